"""The pipeline on a DuckLake warehouse: the demo's dbt models build the same tables as on
the DuckDB file, and ingestion reconciles exactly.  (That ingestion may write while dbt
builds: test_ducklake_warehouse.py for the lake, test_pool_limits.py for the pools.)"""

from __future__ import annotations

import pytest
from ducklake_demo import build_demo, reconciliations

from training_pipeline.runner import table_counts

pytestmark = [pytest.mark.slow, pytest.mark.postgres]  # dbt builds the demo's models


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
