"""The gate inside the asset graph: a bad challenger is blocked and production stays put."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
from churn_model import NAME, assets, key, step
from synthetic_churn import churn_snapshots

from training_pipeline.ml.datasets import TrainingSet, export_training_set
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.resources import build_resources
from training_pipeline.settings import Settings
from training_pipeline_tests.churn_model import CHURN

FAST = {"ops": {step("candidate"): {"config": {"n_trials": 3, "timeout_s": 60.0}}}}


def exported(frame: pd.DataFrame, settings: Settings) -> TrainingSet:
    """Export ``frame`` exactly as the warehouse export would, from an in-memory DuckDB."""
    con = duckdb.connect()
    con.execute("create schema features").fetchall()
    con.execute("create schema raw").fetchall()
    con.register("frame", frame)
    con.execute("create table features.customer_snapshots as select * from frame").fetchall()
    con.execute(
        "create table raw.ingestion_batches as select 'b1' as batch_id, now() as started_at, "
        "1 as rows_loaded"
    ).fetchall()
    return export_training_set(con, CHURN, settings.datasets_dir / NAME)


def graph_on(dataset: TrainingSet):
    @dg.asset(key=key("training_set"))
    def given_dataset() -> TrainingSet:
        return dataset

    return [given_dataset, *assets("candidate", "validation", "production")]


def run(dataset: TrainingSet, settings: Settings) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        graph_on(dataset),
        resources=build_resources(settings),
        run_config=FAST,
        raise_on_error=False,
    )


@pytest.fixture
def good_frame() -> pd.DataFrame:
    return churn_snapshots(n_customers=400, n_snapshots=20, seed=3)


@pytest.mark.slow
def test_a_challenger_trained_on_shuffled_labels_is_blocked_and_production_is_unchanged(
    settings, good_frame
):
    first = run(exported(good_frame, settings), settings)
    assert first.success
    registry = ModelRegistry.for_model(settings.models_dir, NAME)
    champion = registry.production()
    assert champion is not None

    shuffled = good_frame.copy()
    shuffled[CHURN.label] = np.random.default_rng(0).permutation(shuffled[CHURN.label].values)
    second = run(exported(shuffled, settings), settings)

    (check,) = second.get_asset_check_evaluations()
    assert check.check_name == "passes_gate" and not check.passed
    materialized = {e.asset_key for e in second.get_asset_materialization_events()}
    assert key("production") not in materialized
    assert registry.production().version == champion.version
    blocked = registry.versions()[0]
    assert blocked.version != champion.version and blocked.gate["passed"] is False
    assert (Path(blocked.directory) / "report.html").exists()
