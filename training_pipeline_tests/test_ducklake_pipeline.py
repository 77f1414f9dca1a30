"""The pipeline on a DuckLake warehouse: the demo's dbt models build the same tables as on
the DuckDB file, ingestion reconciles exactly, and ingestion runs beside dbt."""

from __future__ import annotations

import os
import subprocess
import sys
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


def test_ingestion_and_dbt_launched_together_run_at_once_on_ducklake(
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
    dagster = str(Path(sys.executable).parent / "dagster")
    selections = ("raw/orders", "staging/stg_crm__customers,marts/customers")
    launches = [
        subprocess.Popen(
            [dagster, "asset", "materialize", "-m", "training_pipeline.definitions"]
            + ["--select", selection],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for selection in selections
    ]
    outputs = [p.communicate(timeout=600)[0] for p in launches]
    for process, output in zip(launches, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        windows = sorted(_step_window(instance, run.run_id) for run in instance.get_runs())
    assert len(windows) == 2
    (first_start, first_end), (second_start, _) = windows
    assert second_start < first_end, f"the runs took turns: {windows}"
