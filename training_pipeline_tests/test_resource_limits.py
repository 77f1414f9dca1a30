"""DuckDB's memory and threads are capped, configurably, on every warehouse connection and
on dbt's, and a bad value is refused before anything opens the warehouse."""

import json
import os
import re
import subprocess
from pathlib import Path

import duckdb
import pytest

from training_pipeline.ingestion import warehouse as wh
from training_pipeline.resources import build_resources
from training_pipeline.settings import (
    DBT_PROJECT_DIR,
    DEFAULT_DUCKDB_MEMORY_LIMIT,
    DEFAULT_DUCKDB_THREADS,
    MEMORY_LIMIT_ENV,
    THREADS_ENV,
    DuckDBLimits,
    Settings,
    SettingsError,
)

DBT = Path(os.environ.get("VIRTUAL_ENV", Path(__file__).parents[1] / ".venv")) / "bin" / "dbt"
SETTINGS_SQL = (
    "select current_setting('memory_limit'), current_setting('threads'), "
    "current_setting('temp_directory')"
)


def duckdb_renders(memory_limit: str) -> str:
    """How DuckDB reports a memory limit back (``2GB`` reads as ``1.8 GiB``)."""
    con = duckdb.connect(config={"memory_limit": memory_limit})
    try:
        return con.execute("select current_setting('memory_limit')").fetchall()[0][0]
    finally:
        con.close()


@pytest.fixture
def limited(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1536MiB")
    monkeypatch.setenv(THREADS_ENV, "1")
    return Settings.from_env()


def test_without_configuration_connections_get_2gb_and_2_threads(settings, monkeypatch):
    monkeypatch.delenv(MEMORY_LIMIT_ENV, raising=False)
    monkeypatch.delenv(THREADS_ENV, raising=False)
    with wh.connect(settings.warehouse_path, limits=settings.duckdb) as con:
        [(memory, threads, temp)] = con.execute(SETTINGS_SQL).fetchall()
    assert (DEFAULT_DUCKDB_MEMORY_LIMIT, DEFAULT_DUCKDB_THREADS) == ("2GB", 2)
    assert (memory, threads) == (duckdb_renders("2GB"), 2)
    assert Path(temp) == settings.data_dir / "duckdb_tmp"


def test_writing_and_read_only_connections_report_the_configured_limits(limited):
    with wh.connect(limited.warehouse_path, limits=limited.duckdb) as con:
        wh.ensure_raw_layer(con)
        writing = con.execute(SETTINGS_SQL).fetchall()
    with wh.connect(limited.warehouse_path, read_only=True, limits=limited.duckdb) as con:
        reading = con.execute(SETTINGS_SQL).fetchall()
    expected = ("1.5 GiB", 1, str(limited.data_dir / "duckdb_tmp"))
    assert writing == reading == [expected]


def test_the_warehouse_resource_passes_the_settings_limits_to_its_connections(limited):
    warehouse = build_resources(limited)["warehouse"]
    with warehouse.connect() as con:
        assert con.execute(SETTINGS_SQL).fetchall()[0][:2] == ("1.5 GiB", 1)


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        (MEMORY_LIMIT_ENV, "lots", "is not a memory size"),
        (MEMORY_LIMIT_ENV, "-1", "is not a memory size"),  # DuckDB reads -1 as "no limit"
        (MEMORY_LIMIT_ENV, "2", "is not a memory size"),
        (MEMORY_LIMIT_ENV, "2PB", "is not a memory size"),
        (MEMORY_LIMIT_ENV, "80%", "is not a memory size"),
        (MEMORY_LIMIT_ENV, "16MB", "is too small"),
        (THREADS_ENV, "0", "threads >= 1"),
        (THREADS_ENV, "two", "threads >= 1"),
        (THREADS_ENV, "1.5", "threads >= 1"),
        (THREADS_ENV, "-2", "threads >= 1"),
    ],
)
def test_a_bad_limit_is_refused_naming_the_variable_and_the_value(
    settings, monkeypatch, variable, value, problem
):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as refused:
        Settings.from_env()
    assert f"{variable}={value!r}" in str(refused.value)
    assert problem in str(refused.value)
    assert not settings.warehouse_path.exists()


def test_a_connection_uses_the_limits_it_is_given_and_never_reads_the_environment(
    settings, monkeypatch
):
    # The limits are decided once, with the settings; a variable changed afterwards (even
    # to a bad value) cannot reach a connection opened during a run.
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "a lot")
    limits = DuckDBLimits(memory_limit="1536MiB", threads=1)
    with wh.connect(settings.warehouse_path, limits=limits) as con:
        assert con.execute(SETTINGS_SQL).fetchall()[0][:2] == ("1.5 GiB", 1)


@pytest.mark.parametrize(("value", "rendered"), [("4GB", "3.7 GiB"), ("512 MiB", "512.0 MiB")])
def test_sizes_in_decimal_and_binary_units_are_accepted(settings, monkeypatch, value, rendered):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, value)
    configured = Settings.from_env()
    with wh.connect(configured.warehouse_path, limits=configured.duckdb) as con:
        assert con.execute(SETTINGS_SQL).fetchall()[0][0] == rendered


def test_the_dbt_profile_defaults_are_the_settings_defaults():
    profile = (DBT_PROJECT_DIR / "profiles.yml").read_text()
    defaults = dict(re.findall(r"env_var\('(TRAINING_PIPELINE_DUCKDB_\w+)', '([^']*)'\)", profile))
    assert defaults == {
        MEMORY_LIMIT_ENV: DEFAULT_DUCKDB_MEMORY_LIMIT,
        THREADS_ENV: str(DEFAULT_DUCKDB_THREADS),
    }


def dbt_show(settings: Settings, sql: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(DBT), "show", "--inline", sql, "--output", "json", "--quiet",
            "--profiles-dir", ".", "--target-path", str(settings.data_dir / "dbt_target"),
            "--log-path", str(settings.data_dir / "dbt_logs"),
        ],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, "TRAINING_PIPELINE_DATA_DIR": str(settings.data_dir)},
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip


@pytest.mark.slow
def test_dbt_connections_get_the_configured_limits_and_the_temp_directory(limited):
    shown = dbt_show(
        limited,
        "select current_setting('memory_limit') as memory_limit, "
        "current_setting('threads') as threads, current_setting('temp_directory') as temp",
    )
    assert shown.returncode == 0, shown.stdout[-3000:] + shown.stderr[-3000:]
    [row] = json.loads(shown.stdout)["show"]
    assert row == {
        "memory_limit": "1.5 GiB",
        "threads": 1,
        "temp": str(limited.data_dir / "duckdb_tmp"),
    }
