"""The laptop baseline the DuckLake and cluster tests compare against: a demo world
ingested and cleaned in process, and what its files sources' ledgers reconcile to."""

from __future__ import annotations

from dataclasses import dataclass
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
from training_pipeline.settings import Settings
from training_pipeline.spec.sources import FilesSource


@dataclass(frozen=True)
class DemoWorld:
    """Which demo world: the same three values generate byte-identical sources."""

    days: int = 120
    customers: int = 60
    seed: int = 3


def demo_settings(data_dir: Path, monkeypatch: pytest.MonkeyPatch, world: DemoWorld) -> Settings:
    """``world`` generated into ``data_dir``, which the settings (and dbt) now point at."""
    monkeypatch.setenv("TRAINING_PIPELINE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("TRAINING_PIPELINE_LANDING_SETTLE_S", "0")
    monkeypatch.delenv("TRAINING_PIPELINE_CRM_URL", raising=False)
    settings = Settings.from_env()
    generate(settings, days=world.days, customers=world.customers, seed=world.seed)
    return settings


def build_demo(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, world: DemoWorld = DemoWorld()
) -> Settings:
    """The demo ``world``, ingested and cleaned into the configured warehouse in process."""
    settings = demo_settings(data_dir, monkeypatch, world)
    with DemoApiServer(settings, host="127.0.0.1", port=0) as server:
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
    """Per files source, how its landed rows split into loaded, rejected, quarantined."""
    sources = declared_sources(load_project(settings, COMPONENT_TYPES))
    with wh.connect(
        settings.warehouse_path, read_only=True, limits=settings.duckdb, lake=settings.lake
    ) as con:
        return {s.name: reconcile_files(con, s) for s in sources if isinstance(s, FilesSource)}
