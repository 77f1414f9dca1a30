"""The pipeline on a DuckLake warehouse: the demo's dbt models build the same tables as on
the DuckDB file, ingestion reconciles exactly, and ingestion runs while dbt builds."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from churn_demo.api_server import DemoApiServer
from churn_demo.generator import generate
from declared_sources import declared_raw_assets, resources_with_sources

from training_pipeline.assets.dbt import cleaned_tables_of
from training_pipeline.components import COMPONENT_TYPES
from training_pipeline.components.loader import load_project
from training_pipeline.components.sources import declared_sources
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.ingestion.reconciliation import Reconciliation, reconcile_files
from training_pipeline.runner import limit_pools, table_counts
from training_pipeline.settings import Settings
from training_pipeline.spec.sources import FilesSource

pytestmark = [pytest.mark.slow, pytest.mark.postgres]  # dbt builds the demo's models
REPO = Path(__file__).parents[1]


def build_demo(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The demo world of seed 3, ingested and cleaned into the configured warehouse."""
    monkeypatch.setenv("TRAINING_PIPELINE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("TRAINING_PIPELINE_LANDING_SETTLE_S", "0")
    monkeypatch.delenv("TRAINING_PIPELINE_CRM_URL", raising=False)
    generate(Settings.from_env(), days=120, customers=60, seed=3)
    with DemoApiServer(Settings.from_env(), host="127.0.0.1", port=0) as server:
        monkeypatch.setenv("TRAINING_PIPELINE_API_URL", server.url)
        settings = Settings.from_env()
        with dg.DagsterInstance.ephemeral() as instance:
            result = dg.materialize(
                [*declared_raw_assets(settings), cleaned_tables_of(settings)],
                resources=resources_with_sources(settings),
                instance=instance,
                raise_on_error=False,
            )
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return settings


def reconciliations(settings: Settings) -> dict[str, Reconciliation]:
    sources = declared_sources(load_project(settings, COMPONENT_TYPES))
    with wh.connect(
        settings.warehouse_path, read_only=True, limits=settings.duckdb, lake=settings.lake
    ) as con:
        return {s.name: reconcile_files(con, s) for s in sources if isinstance(s, FilesSource)}


def test_the_demo_builds_the_same_tables_on_ducklake_as_on_the_duckdb_file(
    tmp_path, monkeypatch, lake_catalog
):
    on_file = build_demo(tmp_path / "file", monkeypatch)
    monkeypatch.setenv("TRAINING_PIPELINE_DUCKLAKE_CATALOG", lake_catalog)
    on_lake = build_demo(tmp_path / "lake", monkeypatch)
    assert on_file.lake is None and on_lake.lake is not None
    counts = table_counts(on_lake)
    assert counts["marts.customers"] > 0 and counts["raw.orders"] > 0
    assert counts == table_counts(on_file)
    # Every landed row is loaded, rejected or quarantined, counted on the lake itself.
    on_lake_ledgers = reconciliations(on_lake)
    assert on_lake_ledgers and all(r.holds for r in on_lake_ledgers.values())
    assert on_lake_ledgers == reconciliations(on_file)
    assert list((tmp_path / "lake" / "lake").rglob("*.parquet")), "no data files in the lake"
    assert not (tmp_path / "lake" / "warehouse.duckdb").exists()


def _step_window(instance: dg.DagsterInstance, run_id: str) -> tuple[float, float]:
    events = instance.all_logs(run_id)
    kinds = dg.DagsterEventType
    start = min(e.timestamp for e in events if e.dagster_event_type == kinds.STEP_START)
    end = max(e.timestamp for e in events if e.dagster_event_type == kinds.STEP_SUCCESS)
    return start, end


def _launch(selection: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    """``dagster asset materialize`` of ``selection``; its output goes to ``log`` (a pipe
    nobody reads while the test waits could fill and stall it)."""
    dagster = str(Path(sys.executable).parent / "dagster")
    with open(log, "w") as output:
        return subprocess.Popen(
            [dagster, "asset", "materialize", "-m", "training_pipeline.definitions"]
            + ["--select", selection],
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def _wait_for_a_step_start(home: Path, dbt: subprocess.Popen) -> None:
    """Until the one run in ``home`` has started its step (the dbt build)."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        while dbt.poll() is None:
            runs = instance.get_runs()
            started = dg.DagsterEventType.STEP_START
            if runs and instance.all_logs(runs[0].run_id, of_type=started):
                return
            time.sleep(0.5)
    raise AssertionError("the dbt run ended before its step started")


def test_ingestion_launched_while_dbt_builds_runs_beside_it_on_ducklake(
    tmp_path, monkeypatch, lake_catalog
):
    monkeypatch.setenv("TRAINING_PIPELINE_DUCKLAKE_CATALOG", lake_catalog)
    settings = build_demo(tmp_path / "data", monkeypatch)  # the tables dbt reads exist
    generate(settings, days=30)  # a month more of order files for the ingestion run
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster_home" / "dagster.yaml").read_text())
    with dg.DagsterInstance.from_config(str(home)) as instance:
        limit_pools(instance, settings.warehouse_writers)  # as `training-pipeline run` does
    env = os.environ | {"DAGSTER_HOME": str(home)}
    models = ("staging/stg_crm__customers", "marts/customers", "staging/stg_shop__orders")
    models += ("marts/orders", "staging/stg_support__tickets", "marts/tickets")
    models += ("features/customer_snapshots",)
    dbt = _launch(",".join(models), env, tmp_path / "dbt.log")
    _wait_for_a_step_start(home, dbt)
    ingestion = _launch("raw/orders", env, tmp_path / "ingestion.log")
    for process, log in ((dbt, "dbt.log"), (ingestion, "ingestion.log")):
        process.wait(timeout=600)
        assert process.returncode == 0, (tmp_path / log).read_text()[-3000:]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        ingestion_run, dbt_run = instance.get_runs()  # newest first
        dbt_window = _step_window(instance, dbt_run.run_id)
        ingestion_window = _step_window(instance, ingestion_run.run_id)
        began = instance.get_run_stats(ingestion_run.run_id).start_time
    # On the DuckDB file the ingestion step would wait for the build's slot to be freed.
    assert ingestion_window[0] < dbt_window[1], (
        f"dbt's step {dbt_window}, the ingestion run began at {began}, its step "
        f"{ingestion_window}; its log: {(tmp_path / 'ingestion.log').read_text()[-4000:]}"
    )
