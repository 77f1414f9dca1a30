"""Shared fixtures and the suite's tiers.

- A throw-away data directory, and a dbt manifest parsed once per test run.
- Tiers: a test that starts dbt to build models, a pipeline run, the CLI's `run` or the
  Dagster daemon is marked ``slow`` (or ``e2e``); one that runs assets through Dagster in
  process is marked ``integration`` (or slow); `make test-fast` leaves those out, and an
  unmarked test that does either fails (``_FastTierGuard``).
- Parallel runs (`make test`: pytest-xdist): scheduling.py decides what runs where.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# anyio is a pytest plugin, so pytest's assertion hook rewrites its modules when they are
# first imported; anyio imports its asyncio back-end lazily, in whichever thread first
# needs it (a TestClient's portal, a served app's thread). A rewrite (ast.parse) racing
# another thread's parse raised CPython 3.11's "AST constructor recursion depth
# mismatch" in test_serving_shadow.py; importing it here, once, in the main thread, first.
import anyio._backends._asyncio  # noqa: F401
import hypothesis_budget  # noqa: F401  (registers the inner loop's hypothesis profile)
import pytest
import scheduling
from scheduling import OUTSIDE_INNER_LOOP, SLOW_MARKERS
from tiers import slow_command

from training_pipeline.project import dbt_root, write_dbt_project_file
from training_pipeline.settings import (
    DBT_PROJECT_DIR,
    DEFAULT_PROJECT_DIR,
    PROJECT_DBT_TARGET,
    Settings,
)

# The order-file tests' `dirs` and `con` fixtures; the DuckLake, S3 and Celery tests'
# services; the daemon tests' helpers and their `pipeline` over a copy of one built
# world; the trained `churn_world`.  Registered in pytest_configure, in the processes
# that run tests only: they import Dagster, and xdist's controller runs none.
FIXTURE_PLUGINS = (
    "order_file_helpers",
    "postgres_helpers",
    "s3_helpers",
    "celery_workers",
    "daemon_helpers",
    "daemon_world",
    "churn_world",
)

# In every process: `--cpu-report N` (cpu_report.py) measures where tests run and adds
# up in the xdist controller; pytester runs a small suite for test_cpu_report.py.
pytest_plugins = ("cpu_report", "pytester")

os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
# Tuning defaults to every core; tests share the machine (and often run beside each
# other), where two spinning OpenMP threads per fit made the gate test 2.4x slower.
os.environ.setdefault("TRAINING_PIPELINE_TUNING_THREADS", "1")

# The default project folder's dbt project (examples/dbt) and the manifest parsed from it.
EXAMPLE_DBT = dbt_root(DEFAULT_PROJECT_DIR)
TARGET = DEFAULT_PROJECT_DIR / PROJECT_DBT_TARGET
MANIFEST = TARGET / "manifest.json"


def _dbt_sources() -> Iterator[Path]:
    for folder in (DBT_PROJECT_DIR, EXAMPLE_DBT):
        for pattern in ("*.sql", "*.yml", "*.csv"):
            for path in folder.rglob(pattern):
                if not {"target", "logs"} & set(path.relative_to(folder).parts):
                    yield path


def _manifest_is_fresh() -> bool:
    """The rule `make install` applies: the manifest is newer than every dbt source."""
    if not MANIFEST.exists():
        return False
    built = MANIFEST.stat().st_mtime
    return all(path.stat().st_mtime <= built for path in _dbt_sources())


def pytest_sessionstart(session: pytest.Session) -> None:
    """Dagster reads the dbt manifest when definitions are imported, so parse first.

    Under xdist the controller parses before it starts the workers; a worker must not
    rewrite the file another worker may be reading.
    """
    if hasattr(session.config, "workerinput"):
        return
    # Generated from dbt_project/dbt_project.yml: rewritten (and so stale) when that changed.
    if not write_dbt_project_file(DEFAULT_PROJECT_DIR) and _manifest_is_fresh():
        return
    dbt = Path(os.environ.get("VIRTUAL_ENV", Path(__file__).parents[1] / ".venv")) / "bin" / "dbt"
    subprocess.run(
        [str(dbt), "parse", "--no-partial-parse", "--profiles-dir", str(DBT_PROJECT_DIR)]
        + ["--quiet"],
        cwd=EXAMPLE_DBT,
        check=True,
    )
    MANIFEST.touch()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    workers = getattr(config, "workerinput", {}).get("workercount", 0)
    items[:] = scheduling.order(items, workers)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, absent under -p no:xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log) -> scheduling.ModuleScheduling:
    return scheduling.ModuleScheduling(config, log)


class _FastTierGuard:
    """Fails a fast-tier test that starts a slow command or a Dagster run, naming the test.

    Installed once for the whole run, it asks which test is running *now*: anything that
    captured `subprocess.Popen` during one test (a monkeypatch restoring its saved value,
    a library subclassing it) cannot carry that test's tier into another.
    """

    def __init__(self) -> None:
        self.current: pytest.Item | None = None

    def unmarked_item(self, markers: tuple[str, ...] = SLOW_MARKERS) -> pytest.Item | None:
        """The running test when it carries none of ``markers``."""
        item = self.current
        if item is None or any(item.get_closest_marker(m) for m in markers):
            return None
        return item

    def popen_class(self, original: type[subprocess.Popen]) -> type[subprocess.Popen]:
        guard = self

        class GuardedPopen(original):  # type: ignore[misc, valid-type]
            def __init__(self, args, *rest, **kwargs) -> None:
                item = guard.unmarked_item()
                reason = slow_command(args) if item is not None else None
                if reason:
                    pytest.fail(
                        f"{item.nodeid} is in the fast tier but {reason}: mark it "
                        "@pytest.mark.slow (or e2e) so that `make test-fast` leaves it out",
                        pytrace=False,
                    )
                super().__init__(args, *rest, **kwargs)

        return GuardedPopen

    def guard_runs(self, run_iterable: type) -> None:
        """Every Dagster run in this process (``materialize``, ``execute_in_process``,
        ``execute_job``) iterates ``run_iterable``: a fast-tier test may not start one."""
        guard, iterate = self, run_iterable.__iter__

        def guarded(run):
            item = guard.unmarked_item(OUTSIDE_INNER_LOOP)
            if item is not None:
                pytest.fail(
                    f"{item.nodeid} is in the fast tier but it runs assets through Dagster: "
                    "mark it @pytest.mark.integration (or slow) so that `make test-fast` "
                    "leaves it out",
                    pytrace=False,
                )
            return iterate(run)

        run_iterable.__iter__ = guarded


_GUARD = _FastTierGuard()


def is_xdist_controller(config: pytest.Config) -> bool:
    """The process that hands tests to xdist workers and runs none itself."""
    if hasattr(config, "workerinput"):
        return False
    return bool(getattr(config.option, "numprocesses", None)) and (
        getattr(config.option, "dist", "no") != "no"
    )


def pytest_configure(config: pytest.Config) -> None:
    subprocess.Popen = _GUARD.popen_class(subprocess.Popen)  # type: ignore[misc]
    if not is_xdist_controller(config):
        from dagster._core.execution.api import ExecuteRunWithPlanIterable

        _GUARD.guard_runs(ExecuteRunWithPlanIterable)
        for name in FIXTURE_PLUGINS:
            config.pluginmanager.import_plugin(name)


@contextmanager
def _running(item: pytest.Item) -> Iterator[None]:
    _GUARD.current = item
    try:
        yield
    finally:
        _GUARD.current = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    with _running(item):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    with _running(item):
        yield


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings for a fresh data directory; dbt finds it through the same variable."""
    data_dir = tmp_path / "data"
    monkeypatch.setenv("TRAINING_PIPELINE_DATA_DIR", str(data_dir))
    monkeypatch.delenv("TRAINING_PIPELINE_CRM_URL", raising=False)
    monkeypatch.delenv("TRAINING_PIPELINE_API_URL", raising=False)
    # Tests land files and ingest at once; the settle time has its own tests.
    monkeypatch.setenv("TRAINING_PIPELINE_LANDING_SETTLE_S", "0")
    return Settings.from_env()
