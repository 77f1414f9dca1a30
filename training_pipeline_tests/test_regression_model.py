"""A regression model declared like any other goes through the whole factory: training
set, candidate, a gate with a ceiling, production, scores under its own column name,
and both drift checks, on a synthetic daily table in a temporary warehouse."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from training_pipeline.assets.model_drift import check_feature_drift, check_prediction_drift
from training_pipeline.assets.model_names import DeclaredModel
from training_pipeline.components.trained_model import model_definitions
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.resources import build_resources
from training_pipeline.spec.model_spec import ModelSpec

NAME = "daily_temps"
SPEC = ModelSpec(
    name=NAME,
    description="Tomorrow's maximum temperature.",
    label_description="the next day's maximum temperature.",
    features="features.daily_weather",  # a dbt model of the project; the rows are ours
    id_column="day",
    time_column="day",
    label="temp_max_next_day",
    task="regression",
    label_horizon="1d",
    tuning={"trials": 3, "seconds": 10, "folds": 2, "valid_periods": 30, "min_rung_rows": 50},
    holdout={"last_periods": 60},
    gate={"ceiling": 4.0, "tolerance": 0.1},
    drift={"reference_periods": 30, "current_periods": 30},
    scores={"score_column": "predicted_temp_max_c"},
    deployment={"canary_rows": 20},
)


def daily_temperatures(n_days: int = 500, seed: int = 0) -> pd.DataFrame:
    """A seasonal temperature with day-to-day persistence; the newest day has no label."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2020-01-01", periods=n_days, freq="D")
    season = 15 + 8 * np.sin(2 * np.pi * days.dayofyear / 365.25)
    temp = season + rng.normal(0, 1.5, n_days)
    frame = pd.DataFrame(
        {
            "day": days.date,
            "temp_max_c": temp,
            "temp_max_c_lag_1": np.r_[np.nan, temp[:-1]],
            "season_sin": np.sin(2 * np.pi * days.dayofyear / 365.25),
            "weather": rng.choice(["sun", "rain", "fog"], n_days).astype(object),
            "temp_max_next_day": np.r_[temp[1:], np.nan],
        }
    )
    return frame


@pytest.fixture
def warehouse_with_days(settings) -> None:
    with wh.connect(settings.warehouse_path, limits=settings.duckdb) as con:
        con.register("days", daily_temperatures())
        con.execute("create schema features").fetchall()
        con.execute("create table features.daily_weather as select * from days").fetchall()
        con.execute("create schema raw").fetchall()
        con.execute(
            "create table raw.ingestion_batches as select 'b1' as batch_id, now() as started_at, "
            "1 as rows_loaded"
        ).fetchall()


@pytest.mark.slow
def test_a_regression_model_is_trained_gated_by_its_ceiling_promoted_scored_and_watched(
    settings, warehouse_with_days
):
    defs = model_definitions(SPEC, settings)
    resources = build_resources(settings)
    model_assets = [a for a in defs.assets if a.key.path[0] == NAME]

    result = dg.materialize(model_assets, resources=resources)

    assert result.success
    gate = [e for e in result.get_asset_check_evaluations() if e.check_name == "passes_gate"]
    assert gate[0].passed, gate[0].metadata
    assert "challenger_rmse" in gate[0].metadata
    validation = result.asset_materializations_for_node(f"{NAME}__validation")[0].metadata
    measured = {"challenger_rmse", "challenger_mae", "challenger_r2"}
    assert measured <= set(validation) and "challenger_roc_auc" not in validation
    assert validation["challenger_rmse"].value < 4.0

    registry = ModelRegistry.for_model(settings.models_dir, NAME)
    production = registry.production()
    stored = registry.metadata(production.version)["problem"]
    assert stored["task"] == "regression"
    # Roles were inferred from the types: the date is the id/time, the text categorical.
    assert (stored["numeric"], stored["categorical"]) == (
        ["temp_max_c", "temp_max_c_lag_1", "season_sin"],
        ["weather"],
    )
    with wh.connect(settings.warehouse_path, read_only=True, limits=settings.duckdb) as con:
        scores = con.execute(f"select * from predictions.{NAME}").df()
    assert list(scores.columns) == ["day", "predicted_temp_max_c", "model_version", "scored_at"]
    assert len(scores) == 1 and pd.Timestamp(scores["day"][0]) == pd.Timestamp("2021-05-14")

    model = DeclaredModel(SPEC, dg.AssetKey(["features", "daily_weather"]))
    store, warehouse = resources["model_store"], resources["warehouse"]
    features = check_feature_drift(("", ""), model, warehouse, store, resources["alerts"])
    predictions = check_prediction_drift(model, warehouse, store)
    assert features.metadata["production_model"].value == production.version
    assert predictions.metadata["production_model"].value == production.version
    # The features' last 30 days are a window to judge; one scored day is not.
    assert "skipped" not in features.metadata and features.metadata["current_rows"].value == 30
    assert "too few rows" in predictions.metadata["skipped"].value
