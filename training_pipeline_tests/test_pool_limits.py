"""Which steps may hold the warehouse at once: on the DuckDB file one at a time, dbt's
build included; on a DuckLake several writers, and dbt's build in a pool of its own, so
an ingestion step starts while dbt builds and another source is being ingested."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from declared_sources import declared_raw_asset

from training_pipeline.assets.dbt import cleaned_tables_of
from training_pipeline.resources import DBT_POOL, WAREHOUSE_POOL
from training_pipeline.runner import limit_pools
from training_pipeline.settings import Settings

pytestmark = pytest.mark.integration  # ingestion beside a dbt process holding the warehouse

REPO = Path(__file__).parents[1]


def settings_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, catalog: str | None):
    monkeypatch.setenv("TRAINING_PIPELINE_DATA_DIR", str(tmp_path / "data"))
    if catalog:
        monkeypatch.setenv("TRAINING_PIPELINE_DUCKLAKE_CATALOG", catalog)
        monkeypatch.setenv("TRAINING_PIPELINE_DUCKLAKE_WRITERS", "2")
    else:
        monkeypatch.delenv("TRAINING_PIPELINE_DUCKLAKE_CATALOG", raising=False)
    return Settings.from_env()


def slots_claimed(tmp_path: Path, settings: Settings) -> list[bool]:
    """Whether dbt's build, then raw/tickets, then raw/orders each get a slot while the
    ones before still hold theirs, with the pools as `training-pipeline run` sets them
    and the repo's instance config."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster_home" / "dagster.yaml").read_text())
    with dg.DagsterInstance.from_config(str(home)) as instance:
        limit_pools(instance, settings.warehouse_writers)
        storage = instance.event_log_storage
        dbt_pool = cleaned_tables_of(settings).op.pool
        tickets_pool = declared_raw_asset(settings, "tickets").op.pool
        orders_pool = declared_raw_asset(settings, "orders").op.pool
        steps = [(dbt_pool, "cleaned_tables"), (tickets_pool, "raw__tickets")]
        steps.append((orders_pool, "raw__orders"))
        return [
            storage.claim_concurrency_slot(pool, f"run-{step}", step).is_claimed
            for pool, step in steps
        ]


def test_on_the_duckdb_file_ingestion_waits_while_dbt_builds(tmp_path, monkeypatch):
    settings = settings_for(tmp_path, monkeypatch, catalog=None)
    assert cleaned_tables_of(settings).op.pool == WAREHOUSE_POOL
    assert slots_claimed(tmp_path, settings) == [True, False, False]


def test_on_a_ducklake_ingestion_starts_while_dbt_builds_and_another_source_loads(
    tmp_path, monkeypatch
):
    settings = settings_for(tmp_path, monkeypatch, catalog="postgresql://u@db:5432/lake")
    assert cleaned_tables_of(settings).op.pool == DBT_POOL
    assert settings.warehouse_writers == 2
    assert slots_claimed(tmp_path, settings) == [True, True, True]
