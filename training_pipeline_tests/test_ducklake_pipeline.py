"""The pipeline on a DuckLake warehouse: the demo's dbt models build the same tables as on
the DuckDB file, and ingestion reconciles exactly.  (That ingestion may write while dbt
builds: test_ducklake_warehouse.py for the lake, test_pool_limits.py for the pools.)"""

from __future__ import annotations

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
from training_pipeline.runner import table_counts
from training_pipeline.settings import Settings
from training_pipeline.spec.sources import FilesSource

pytestmark = [pytest.mark.slow, pytest.mark.postgres]  # dbt builds the demo's models


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
