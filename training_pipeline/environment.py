"""Every ``TRAINING_PIPELINE_*`` environment variable, declared once with its parser.

Nothing else in the package reads these variables from ``os.environ``: modules call
``read(NAME)``, which parses the value with the declared parser, so a bad value fails
with a ``SettingsError`` naming the variable, the value (masked when it may hold a
secret) and what is allowed, wherever it is first read.  ``check_environment`` checks
every variable that is set, all at once, and warns about a ``TRAINING_PIPELINE_*``
variable the pipeline does not read (a typo), naming the closest known one.  The CLI
calls it before any command runs, and ``definitions.py`` when the definitions load, so
a bad setting stops everything before a run starts, never a minute into one.

The parsers are in ``setting_parsers``, the masking of secret values in ``masking``.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from training_pipeline.masking import mask_url, password_masked
from training_pipeline.setting_parsers import (
    cron,
    database_url,
    directory,
    duration,
    http_url,
    lake_data_path,
    memory_size,
    number,
    one_of,
    optional_http_url,
    postgres_url,
    queue_name,
    s3_prefix,
    service_url,
    whole_number,
)

PREFIX = "TRAINING_PIPELINE_"
# Variables of the test suite, not of the pipeline (e.g. where a test Postgres runs).
TEST_PREFIX = PREFIX + "TEST_"

DATA_DIR_ENV = PREFIX + "DATA_DIR"
PROJECT_DIR_ENV = PREFIX + "PROJECT_DIR"
OPTUNA_STORAGE_ENV = PREFIX + "OPTUNA_STORAGE"
WEBHOOK_URL_ENV = PREFIX + "ALERT_WEBHOOK_URL"
UI_URL_ENV = PREFIX + "UI_URL"
MEMORY_LIMIT_ENV = PREFIX + "DUCKDB_MEMORY_LIMIT"
THREADS_ENV = PREFIX + "DUCKDB_THREADS"
MAX_FILE_BYTES_ENV = PREFIX + "MAX_FILE_BYTES"
MAX_LINE_BYTES_ENV = PREFIX + "MAX_LINE_BYTES"
LANDING_SETTLE_ENV = PREFIX + "LANDING_SETTLE_S"
FUTURE_TOLERANCE_ENV = PREFIX + "FUTURE_TOLERANCE_HOURS"
MAX_REJECTED_SHARE_ENV = PREFIX + "MAX_REJECTED_SHARE"
DUCKLAKE_CATALOG_ENV = PREFIX + "DUCKLAKE_CATALOG"
DUCKLAKE_DATA_PATH_ENV = PREFIX + "DUCKLAKE_DATA_PATH"
DUCKLAKE_WRITERS_ENV = PREFIX + "DUCKLAKE_WRITERS"
S3_ENDPOINT_URL_ENV = PREFIX + "S3_ENDPOINT_URL"
REGISTRY_URL_ENV = PREFIX + "REGISTRY_URL"
EXECUTOR_ENV = PREFIX + "EXECUTOR"
CELERY_BROKER_ENV = PREFIX + "CELERY_BROKER"
CELERY_BACKEND_ENV = PREFIX + "CELERY_BACKEND"
CELERY_QUEUE_ENV = PREFIX + "CELERY_QUEUE"
TUNING_WORKERS_ENV = PREFIX + "TUNING_WORKERS"

DEFAULT_UI_URL = "http://127.0.0.1:3000"  # where `make ui` serves the Dagster UI
# 2 GB leaves an 8 GB laptop room for the Dagster webserver, daemon and code server and
# for scikit-learn tuning beside DuckDB (whose own default is 80% of RAM); the demo
# warehouse needs far less, and a bigger job spills to the temp directory instead of
# being killed.  dbt_project/profiles.yml repeats these defaults (a test pins that).
DEFAULT_DUCKDB_MEMORY_LIMIT = "2GB"
# Two threads match the 2-core machines this targets without starving the daemon.
DEFAULT_DUCKDB_THREADS = 2

logger = logging.getLogger(__name__)


class SettingsError(ValueError):
    """A configured value is unusable; the message names the variable and the value."""


# --- the declarations -------------------------------------------------------------------


@dataclass(frozen=True)
class Variable:
    """One setting: how its text becomes a value, and what a person may set it to."""

    name: str
    parse: Callable[[str], Any]
    allowed: str
    default: str | None  # None: unset means "derive it" or "off" (see the reader)
    bad_example: str  # a value that must be refused; the test suite tries each
    mask: Callable[[str], str] | None = None  # for values that may hold a secret

    def value(self, text: str) -> Any:
        try:
            return self.parse(text)
        except ValueError as error:
            shown = self.mask(text) if self.mask else text
            message = f"{self.name}={shown!r} is refused: {error}; {self.allowed}"
            raise SettingsError(message) from None


def _declare(*variables: Variable) -> dict[str, Variable]:
    return {variable.name: variable for variable in variables}


VARIABLES: dict[str, Variable] = _declare(
    Variable(DATA_DIR_ENV, directory, "expected a directory path (default: data/ in the repo)",
             None, ""),
    Variable(PROJECT_DIR_ENV, directory,
             "expected the project folder holding defs/ (default: examples/ in the repo)",
             None, ""),
    Variable(OPTUNA_STORAGE_ENV, database_url,
             "expected a SQLAlchemy URL for Optuna (default: <data dir>/optuna.db)",
             None, "optuna.db", password_masked),
    Variable(WEBHOOK_URL_ENV, optional_http_url,
             "expected an http:// or https:// webhook URL with a host, or empty for none",
             None, "hooks.slack.com/services/T0/B0/x", mask_url),
    Variable(UI_URL_ENV, http_url, "expected the Dagster UI's http:// or https:// URL",
             DEFAULT_UI_URL, "localhost:3000"),
    Variable(MEMORY_LIMIT_ENV, memory_size,
             "expected a memory size of at least 64MB: a number and a unit (KB, MB, GB, TB "
             "or KiB, MiB, GiB, TiB), e.g. 2GB", DEFAULT_DUCKDB_MEMORY_LIMIT, "lots"),
    Variable(THREADS_ENV, whole_number(1), "expected a whole number of threads >= 1",
             str(DEFAULT_DUCKDB_THREADS), "0"),
    Variable(MAX_FILE_BYTES_ENV, whole_number(1), "expected a whole number of bytes >= 1",
             str(512 * 1024 * 1024), "512MB"),
    Variable(MAX_LINE_BYTES_ENV, whole_number(1), "expected a whole number of bytes >= 1",
             str(1024 * 1024), "-1"),
    Variable(LANDING_SETTLE_ENV, number(0), "expected a finite number of seconds >= 0",
             "5", "soon"),
    Variable(FUTURE_TOLERANCE_ENV, number(0),
             "expected a finite number of hours >= 0 a delivered timestamp may lie past its "
             "ingestion", "24", "a day"),
    Variable(MAX_REJECTED_SHARE_ENV, number(0, 1),
             "expected a share of a batch's rows from 0 to 1 (0.05 blocks above 5 %)", "0.05",
             "5%"),
    Variable(DUCKLAKE_CATALOG_ENV, postgres_url,
             "expected the postgresql:// URL of the DuckLake catalog database (unset: the "
             "warehouse is the DuckDB file)", None, "mysql://h/db", password_masked),
    Variable(DUCKLAKE_DATA_PATH_ENV, lake_data_path,
             "expected an absolute folder or an s3://bucket/prefix for DuckLake's data files "
             "(default: <data dir>/lake)", None, "lake"),
    Variable(DUCKLAKE_WRITERS_ENV, whole_number(1),
             "expected a whole number >= 1 of steps that may write the DuckLake at once", "4",
             "0"),
    Variable(REGISTRY_URL_ENV, s3_prefix,
             "expected s3://bucket/prefix for the model registry (unset: the folder "
             "<data dir>/models)", None, "/srv/models"),
    Variable(S3_ENDPOINT_URL_ENV, http_url,
             "expected the http(s):// URL of an S3-compatible server (unset: AWS S3)", None,
             "localhost:9000"),
    Variable(PREFIX + "RETRAIN_POLICY", one_of("on_drift", "on_new_data", "cron"),
             "expected one of on_drift, on_new_data, cron", "on_drift", "weekly"),
    Variable(PREFIX + "RETRAIN_CRON", cron, "expected a cron string such as '0 2 * * *'",
             "0 2 * * *", "every night"),
    Variable(PREFIX + "NIGHTLY_RETRAIN", one_of("on", "off"), "expected on or off", "on",
             "maybe"),
    Variable(PREFIX + "SENSOR_INTERVAL_S", whole_number(1),
             "expected a whole number of seconds, must be ≥ 1", "30", "0"),
    Variable(PREFIX + "DRIFT_SHARE_ERROR", number(0, 1, low_open=True),
             "expected a share of drifted columns in (0, 1]", "0.5", "1.5"),
    Variable(PREFIX + "DRIFT_COOLDOWN", duration,
             "expected a duration: a whole number and s, m, h, d or w, e.g. 6h", "0s", "soon"),
    Variable(PREFIX + "TUNING_TRIALS", whole_number(1), "expected a whole number of trials >= 1",
             "20", "abc"),
    Variable(PREFIX + "TUNING_SECONDS", number(0, low_open=True),
             "expected a finite number of seconds > 0", "45", "0"),
    Variable(PREFIX + "TUNING_THREADS", whole_number(1),
             "expected a whole number of threads >= 1 (unset: every usable core)", None, "all"),
    Variable(TUNING_WORKERS_ENV, whole_number(1),
             "expected a whole number of tuning worker processes >= 1 (more than 1 needs a "
             "shared study storage such as PostgreSQL)", "1", "two"),
    Variable(EXECUTOR_ENV, one_of("in_process", "multiprocess", "celery", "k8s"),
             "expected one of in_process, multiprocess, celery, k8s", "in_process", "dask"),
    Variable(CELERY_BROKER_ENV, service_url("amqp", "pyamqp", "redis", "rediss"),
             "expected the Celery broker's amqp:// or redis:// URL",
             "amqp://guest:guest@127.0.0.1:5672//", "127.0.0.1:5672", password_masked),
    Variable(CELERY_BACKEND_ENV, service_url("redis", "rediss"),
             "expected the Celery result backend's redis:// URL",
             "redis://127.0.0.1:6379/0", "6379", password_masked),
    Variable(CELERY_QUEUE_ENV, queue_name,
             "expected the queue name the Celery workers listen on (letters, digits, _ - .)",
             "dagster", "my queue"),
    Variable(PREFIX + "GATE_AUC_FLOOR", number(0, 1), "expected a ROC AUC from 0 to 1", "0.75",
             "abc"),
    Variable(PREFIX + "GATE_MAX_AUC_DROP", number(0, 1),
             "expected an AUC difference from 0 to 1", "0.01", "2"),
)  # fmt: skip


def read(name: str, env: Mapping[str, str] | None = None) -> Any:
    """The parsed value of ``name``; its declared default when unset (``None`` if none).

    Raises:
        SettingsError: the value (or a bad default) does not parse; names all three.
    """
    variable = VARIABLES[name]
    text = (os.environ if env is None else env).get(name, variable.default)
    return None if text is None else variable.value(text)


def publish(name: str, value: str) -> None:
    """Hand a resolved value to every child process this one starts (dbt, ``dagster
    dev``), which would otherwise re-read the raw text relative to its own folder."""
    VARIABLES[name].value(value)
    os.environ[name] = value


def publish_default(name: str, value: str) -> None:
    """Set a variable of another tool (``DAGSTER_HOME``, dbt's) unless the user has."""
    os.environ.setdefault(name, value)


@contextmanager
def handed_on(name: str, value: str) -> Iterator[None]:
    """``name`` set to ``value`` for the block, here and in every process started in it,
    then put back: how ``run`` and ``ui`` point a declared source's base-URL variable at
    the companion they serve (``companions.py``)."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def value_of(name: str) -> str | None:
    """The value the user gave ``name``, or None: for a source's base URL variable, read
    only to compare it with a companion's address (``companions.py``); for a files
    source's ``landing_env``, the landing that replaces the declared one (checked with
    the settings first, ``source_declarations.py``)."""
    return os.environ.get(name)


def is_set(name: str) -> bool:
    """Whether the user set ``name``: a secret that is set is handed on by name, never
    by value (see ``resources.py``)."""
    return name in os.environ


def child_environment(
    overrides: Mapping[str, str] = {}, path_first: str | None = None
) -> dict[str, str]:
    """This process's environment with ``overrides`` (and ``path_first`` put at the head
    of ``PATH``), for a child process."""
    env = {**os.environ, **overrides}
    if path_first is not None:
        env["PATH"] = path_first + os.pathsep + env.get("PATH", "")
    return env


def unknown_variable_warnings(
    env: Mapping[str, str], declared: Mapping[str, Variable] = {}
) -> list[str]:
    """One warning per ``TRAINING_PIPELINE_*`` variable the pipeline never reads: neither
    a setting nor a variable a source declaration names (``declared``)."""
    warnings = []
    for name in sorted(env):
        if not name.startswith(PREFIX) or name.startswith(TEST_PREFIX):
            continue
        if name in VARIABLES or name in declared:
            continue
        # Compared without the prefix, which every name shares.
        known = {known[len(PREFIX) :]: known for known in VARIABLES}
        close = difflib.get_close_matches(name[len(PREFIX) :], known, n=1, cutoff=0.6)
        hint = f"did you mean {known[close[0]]}?" if close else "see the README's settings table"
        warnings.append(f"{name} is set but the pipeline reads no such setting; {hint}")
    return warnings


def check_environment(
    env: Mapping[str, str] | None = None, declared: Mapping[str, Variable] = {}
) -> list[str]:
    """Parse every set variable, the settings' and those ``declared`` by the project's
    sources (``declared_variables.py``); warn about unknown ones (logged and returned).

    Raises:
        SettingsError: one or more values are refused; the message lists each one.
    """
    env = os.environ if env is None else env
    problems = []
    for name, variable in {**VARIABLES, **declared}.items():
        if name in env:
            try:
                variable.value(env[name])
            except SettingsError as error:
                problems.append(str(error))
    if len(problems) == 1:
        raise SettingsError(problems[0])
    if problems:
        raise SettingsError(f"{len(problems)} settings are refused:\n- " + "\n- ".join(problems))
    warnings = unknown_variable_warnings(env, declared)
    for warning in warnings:
        logger.warning(warning)
    return warnings
