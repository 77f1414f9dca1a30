"""The fast tier stays fast: a test that starts a slow command or runs assets through
Dagster must carry the marker that keeps it out."""

from __future__ import annotations

import subprocess
from pathlib import Path

import conftest
import dagster as dg
import pytest
from hypothesis import settings
from hypothesis_budget import INNER_LOOP, examples
from scheduling import OUTSIDE_INNER_LOOP, ModuleScheduling, order
from tiers import slow_command


@pytest.mark.parametrize(
    "command",
    [
        [".venv/bin/dbt", "build", "--select", "+customer_snapshots"],
        ["dbt", "run"],
        ["/x/bin/dagster-daemon", "run", "-w", "workspace.yaml"],
        ["training-pipeline", "run"],
        ["/x/bin/training-pipeline", "retrain"],
        ["dagster", "job", "launch", "-j", "retrain_on_latest_data"],
        ["dagster", "asset", "materialize", "--select", "raw/orders"],
        ["/usr/bin/python3", "scripts/chaos.py", "--rounds", "1"],
        ["/x/.venv/bin/churn-demo", "chaos", "--rounds", "1"],
        "dbt build --quiet",
    ],
)
def test_builds_pipeline_runs_and_the_daemon_are_slow(command):
    assert slow_command(command)


@pytest.mark.parametrize(
    "command",
    [
        ["dbt", "parse", "--no-partial-parse"],
        ["dbt", "test", "--select", "test_type:unit"],
        ["dbt", "show", "--inline", "select 1 as run"],
        ["dbt", "compile", "--inline", "{{ parse_age('v') }}"],
        ["dagster", "definitions", "validate"],
        ["training-pipeline", "status", "--json"],
        ["sleep", "60"],
        [],
    ],
)
def test_parsing_showing_unit_tests_and_status_stay_in_the_fast_tier(command):
    assert slow_command(command) is None


@pytest.fixture
def fake_dbt(tmp_path: Path) -> Path:
    """An executable named dbt that does nothing: the guard looks at names only."""
    dbt = tmp_path / "dbt"
    dbt.write_text("#!/bin/sh\nexit 0\n")
    dbt.chmod(0o755)
    return dbt


def test_an_unmarked_test_that_starts_a_dbt_build_fails_and_names_the_marker(fake_dbt):
    with pytest.raises(pytest.fail.Exception, match=r"mark it @pytest\.mark\.slow"):
        subprocess.run([str(fake_dbt), "build"], check=True)


@pytest.mark.slow
def test_a_test_marked_slow_may_start_a_dbt_build(fake_dbt):
    assert subprocess.run([str(fake_dbt), "build"], check=True).returncode == 0


def test_an_unmarked_test_may_start_a_dbt_parse(fake_dbt):
    assert subprocess.run([str(fake_dbt), "parse"], check=True).returncode == 0


@dg.asset
def one() -> int:
    return 1


def test_an_unmarked_test_that_materializes_an_asset_fails_and_names_the_marker():
    with pytest.raises(pytest.fail.Exception, match=r"mark it @pytest\.mark\.integration"):
        dg.materialize([one])


@pytest.mark.integration
def test_a_test_marked_integration_may_materialize_an_asset():
    assert dg.materialize([one]).output_for_node("one") == 1


def test_a_job_executed_in_process_is_a_run_too():
    defs = dg.Definitions(assets=[one], jobs=[dg.define_asset_job("just_one")])
    with pytest.raises(pytest.fail.Exception, match=r"runs assets through Dagster"):
        defs.resolve_job_def("just_one").execute_in_process()


class FakeItem:
    """What scheduling.order looks at: a node id and markers."""

    def __init__(self, nodeid: str, *markers: str) -> None:
        self.nodeid, self.markers = nodeid, markers

    def get_closest_marker(self, name: str) -> str | None:
        return name if name in self.markers else None


def test_a_popen_saved_during_a_fast_test_does_not_fail_a_later_slow_test(fake_dbt, monkeypatch):
    # A monkeypatch of subprocess.Popen in a fast test saves the guarded class and puts it
    # back after the test; the guard must judge the test running when it is called.
    saved = subprocess.Popen
    monkeypatch.setattr(conftest._GUARD, "current", FakeItem("t/test_x.py::later", "slow"))
    assert saved([str(fake_dbt), "build"]).wait() == 0
    monkeypatch.setattr(conftest._GUARD, "current", FakeItem("t/test_x.py::fast"))
    with pytest.raises(pytest.fail.Exception, match=r"t/test_x\.py::fast is in the fast tier"):
        saved([str(fake_dbt), "build"])


def ids(items) -> list[str]:
    return [item.nodeid.removeprefix("t/") for item in items]


def test_each_worker_starts_a_heavy_test_with_a_light_module_queued_behind_it():
    items = [
        FakeItem("t/test_alerts.py::a"),
        FakeItem("t/test_alerts.py::b"),
        FakeItem("t/test_features.py::x", "slow"),
        FakeItem("t/test_nulled_values.py::n"),
        FakeItem("t/test_crash_recovery.py::test_kill_9_at_every_stage", "e2e"),
        FakeItem("t/test_automation_end_to_end.py::daemon", "e2e"),
        FakeItem("t/test_warehouse_pool.py::pool", "slow"),
    ]

    ordered = order(items, workers=2)

    assert ids(ordered) == [
        "test_automation_end_to_end.py::daemon",
        "test_crash_recovery.py::test_kill_9_at_every_stage",
        "test_nulled_values.py::n",  # the smallest light modules, one per worker
        "test_alerts.py::a",
        "test_alerts.py::b",
        "test_warehouse_pool.py::pool",  # the other heavy units next, costliest first
        "test_features.py::x",
    ]
    assert ids(order(items, workers=0))[:3] == ids(ordered)[:2] + ["test_warehouse_pool.py::pool"]


def test_a_module_is_one_unit_of_work_except_the_long_crash_tests():
    split = ModuleScheduling._split_scope
    assert split(None, "t/test_features.py::test_a") == "t/test_features.py"
    assert split(None, "t/test_value_parsers.py::test_b[x@y]") == "t/test_value_parsers.py"
    kill = "t/test_crash_recovery.py::test_kill"
    assert split(None, kill) == kill


def test_the_modules_that_share_a_world_are_one_unit_of_work():
    split = ModuleScheduling._split_scope
    evidence = split(None, "t/test_model_evidence.py::test_a")
    assert evidence == split(None, "t/test_reproduce.py::test_b") != "t/test_model_evidence.py"


def test_the_inner_loop_runs_every_property_on_a_third_of_its_examples_and_ci_on_all():
    current = settings.get_current_profile_name()
    try:
        settings.load_profile("default")
        assert [examples(n) for n in (30, 40, 100, 150)] == [30, 40, 100, 150]
        settings.load_profile(INNER_LOOP)
        assert [examples(n) for n in (30, 40, 100, 150)] == [10, 13, 34, 51]
    finally:
        settings.load_profile(current)


def test_make_test_fast_loads_the_inner_loop_profile_and_make_test_does_not():
    makefile = (Path(conftest.__file__).parents[1] / "Makefile").read_text()
    fast = makefile.split("\ntest-fast:", 1)[1].split("\n\n", 1)[0]
    full = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert f"--hypothesis-profile {INNER_LOOP}" in fast
    assert "--hypothesis-profile" not in full


def test_make_test_fast_leaves_out_every_marker_outside_the_inner_loop():
    makefile = (Path(conftest.__file__).parents[1] / "Makefile").read_text()
    fast = makefile.split("\ntest-fast:", 1)[1].split("\n\n", 1)[0]
    expression = " and ".join(f"not {marker}" for marker in OUTSIDE_INNER_LOOP)
    assert f'-m "{expression}"' in fast
