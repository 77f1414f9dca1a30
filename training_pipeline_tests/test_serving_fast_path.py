"""The per-version fast path: the product's pipelines replayed on numpy rows give the
pipelines' own outputs, and a version whose fast path disagrees is served by the plain
path and says so."""

from __future__ import annotations

import dataclasses
import functools
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fitted_models import preprocessor, training_rows
from serving_models import NAME, churn_registry, record, servable
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler
from starlette.testclient import TestClient
from synthetic_churn import churn_snapshots
from synthetic_regression import SALES, store_weeks

from training_pipeline.ml.problem import ProblemSpec, resolve_roles
from training_pipeline.ml.tasks import TASKS
from training_pipeline.ml.tuning import fit_final
from training_pipeline.serving import loaded as loaded_module
from training_pipeline.serving.app import Limits, build_app
from training_pipeline.serving.fast_path import compile_fast_path
from training_pipeline.serving.features import FeatureSpec
from training_pipeline.serving.loaded import UNSEEN_CATEGORY, as_records, fast_path_of
from training_pipeline.serving.metrics import ServingMetrics
from training_pipeline.serving.swap import ServedModels
from training_pipeline_tests.churn_model import CHURN

SMALL = {
    "hist_gradient_boosting": {"max_iter": 20},
    "random_forest": {"n_estimators": 10, "max_depth": 6},
    "logistic_regression": {},
    "ridge": {},
}


@functools.cache
def churn_frame() -> pd.DataFrame:
    return churn_snapshots(n_customers=120, n_snapshots=4, seed=0)


@functools.cache
def sales() -> tuple[ProblemSpec, pd.DataFrame]:
    weeks = store_weeks(n_stores=60, n_weeks=8, seed=0)
    return resolve_roles(SALES, weeks)[0], weeks


def awkward_records(spec: ProblemSpec, frame: pd.DataFrame) -> list[dict]:
    """Training rows as a client sends them, plus every kind of awkward value: a row of
    nulls, unseen categories, a boolean category."""
    records = as_records(frame[list(spec.features)].head(40))
    categorical = spec.categorical or ()
    unseen = {name: UNSEEN_CATEGORY for name in categorical}
    flags = {name: True for name in categorical}
    nulls = dict.fromkeys(spec.features)
    return [*records, nulls, records[0] | unseen, records[1] | flags]


def outputs_both_ways(spec: ProblemSpec, frame: pd.DataFrame, family: str):
    pipeline = fit_final(frame, spec, family, SMALL[family])
    records = awkward_records(spec, frame)
    features = FeatureSpec.from_problem(spec.to_dict())
    plain = spec.task_adapter.output(pipeline, features.as_frame(records))
    fast = compile_fast_path(pipeline, spec.task_adapter.is_classification, spec.numeric)
    return fast.output(records), plain


@pytest.mark.parametrize("family", TASKS["binary"].families)
def test_the_fast_path_gives_each_churn_familys_probabilities_as_its_pipeline_does(family):
    fast, plain = outputs_both_ways(CHURN, churn_frame(), family)

    assert len(fast) == 43
    np.testing.assert_allclose(fast, plain, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("family", TASKS["regression"].families)
def test_the_fast_path_gives_each_regression_familys_values_as_its_pipeline_does(family):
    spec, weeks = sales()
    fast, plain = outputs_both_ways(spec, weeks, family)

    np.testing.assert_allclose(fast, plain, rtol=1e-9, atol=1e-9)


def test_a_version_whose_fast_path_agrees_is_served_by_it_and_says_on_what_rows():
    pipeline = fit_final(churn_frame(), CHURN, "logistic_regression", {})
    canary = as_records(churn_frame()[list(CHURN.features)].head(20))

    fast, reason = fast_path_of(pipeline, CHURN, features_of(CHURN), 0.5, canary)

    assert fast is not None
    assert reason == (
        "linear model as a dot product; "
        "equal to the pipeline on 22 probe rows (training rows, nulls, unseen)"
    )


def test_a_version_whose_fast_path_disagrees_is_served_by_the_plain_path_saying_why(monkeypatch):
    off_by_a_little(monkeypatch)
    pipeline = fit_final(churn_frame(), CHURN, "logistic_regression", {})
    canary = as_records(churn_frame()[list(CHURN.features)].head(20))

    fast, reason = fast_path_of(pipeline, CHURN, features_of(CHURN), 0.5, canary)

    assert fast is None
    assert reason.startswith("the fast path disagrees with the pipeline on 22 probe rows")


def test_a_fast_path_that_fails_on_the_probe_rows_leaves_the_version_to_the_plain_path(
    monkeypatch,
):
    def fails(x):
        raise ValueError("shapes (1,20) and (19,) not aligned")

    compile_real = loaded_module.compile_fast_path
    monkeypatch.setattr(
        loaded_module,
        "compile_fast_path",
        lambda *args: dataclasses.replace(compile_real(*args), estimate=fails),
    )
    pipeline = fit_final(churn_frame(), CHURN, "logistic_regression", {})
    canary = as_records(churn_frame()[list(CHURN.features)].head(5))

    fast, reason = fast_path_of(pipeline, CHURN, features_of(CHURN), 0.5, canary)

    assert fast is None
    assert reason == (
        "the fast path failed on the probe rows: ValueError: shapes (1,20) and (19,) not aligned"
    )


def test_a_pipeline_step_the_fast_path_does_not_know_is_named_and_served_plainly():
    preprocess = preprocessor()
    preprocess.transformers[0][1].steps.append(("minmaxscaler", MinMaxScaler()))
    pipeline = Pipeline([("preprocess", preprocess), ("model", LogisticRegression())])
    rows = training_rows()
    pipeline.fit(rows[list(CHURN.features)], rows[CHURN.label])
    canary = as_records(rows[list(CHURN.features)].head(10))

    fast, reason = fast_path_of(pipeline, CHURN, features_of(CHURN), 0.5, canary)

    assert fast is None
    assert reason == (
        "no fast path for this pipeline: step numeric.minmaxscaler (MinMaxScaler) has no fast path"
    )


def test_the_server_shows_which_path_serves_a_version_and_both_answer_alike(
    tmp_path: Path, monkeypatch
):
    registry = churn_registry(tmp_path / "models")
    registry.promote(servable(registry))
    with client(tmp_path / "models") as fast_client:
        fast_detail = fast_client.get(f"/v1/models/{NAME}").json()
        fast_score = fast_client.post(f"/v1/models/{NAME}/predict", json=record(3)).json()
    off_by_a_little(monkeypatch)
    with client(tmp_path / "models") as plain_client:
        plain_detail = plain_client.get(f"/v1/models/{NAME}").json()
        plain_score = plain_client.post(f"/v1/models/{NAME}/predict", json=record(3)).json()

    assert (fast_detail["served_by"], plain_detail["served_by"]) == ("fast", "plain")
    assert "disagrees" in plain_detail["path_reason"]
    assert plain_client.get("/v1/models").json()["models"][0]["served_by"] == "plain"
    assert fast_score["score"] == pytest.approx(plain_score["score"], rel=1e-9)
    assert fast_score["prediction"] == plain_score["prediction"]


def features_of(spec: ProblemSpec) -> FeatureSpec:
    return FeatureSpec.from_problem(spec.to_dict())


def off_by_a_little(monkeypatch) -> None:
    """Every fast path compiled from now on scores 1e-6 higher than its pipeline."""
    compile_real = loaded_module.compile_fast_path

    def compile_off(*args, **kwargs):
        real = compile_real(*args, **kwargs)
        return dataclasses.replace(real, estimate=lambda x: real.estimate(x) + 1e-6)

    monkeypatch.setattr(loaded_module, "compile_fast_path", compile_off)


def client(models_dir: Path) -> TestClient:
    metrics = ServingMetrics()
    served = ServedModels({NAME: churn_registry(models_dir)}, on_refused=lambda refusal: None)
    return TestClient(build_app(served, metrics, None, Limits(watch_interval_s=0.05)))


def test_gradient_boosting_is_served_by_walking_its_trees_and_a_forest_by_its_own_predict():
    canary = as_records(churn_frame()[list(CHURN.features)].head(20))
    reasons = {}
    for family in ("hist_gradient_boosting", "random_forest"):
        pipeline = fit_final(churn_frame(), CHURN, family, SMALL[family])
        reasons[family] = fast_path_of(pipeline, CHURN, features_of(CHURN), 0.5, canary)[1]

    assert reasons["hist_gradient_boosting"].startswith("gradient boosting's trees walked")
    assert reasons["random_forest"].startswith("RandomForestClassifier's own predict")


def test_loading_a_version_logs_which_path_serves_it(tmp_path: Path, monkeypatch, caplog):
    registry = churn_registry(tmp_path / "models")
    fast_version, plain_version = servable(registry), servable(registry)

    with caplog.at_level(logging.INFO, logger=loaded_module.__name__):
        loaded_module.load_servable(registry, NAME, fast_version)
        off_by_a_little(monkeypatch)
        loaded_module.load_servable(registry, NAME, plain_version)

    said = [(r.levelname, r.getMessage().split(" (")[0]) for r in caplog.records]
    assert said == [
        ("INFO", f"model churn version {fast_version}: served by the fast path"),
        ("WARNING", f"model churn version {plain_version}: served by the plain path"),
    ]
