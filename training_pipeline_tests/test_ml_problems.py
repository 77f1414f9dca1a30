"""The ML core is generic: a problem spec decides task, roles, metrics, holdout and gate."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic_regression import SALES, store_weeks

from training_pipeline.ml.comparison import DifferenceInterval
from training_pipeline.ml.datasets import TrainingSet
from training_pipeline.ml.deployment import smoke_test
from training_pipeline.ml.drift import feature_drift, prediction_drift, reference_snapshots
from training_pipeline.ml.evaluation import GatePolicy, Metrics, gate
from training_pipeline.ml.problem import Holdout, ProblemSpec, resolve_roles
from training_pipeline.ml.reports import comparison_markdown, model_card, validation_report_html
from training_pipeline.ml.splits import cv_folds, holdout_split
from training_pipeline.ml.tuning import TuningConfig
from training_pipeline.ml.workflow import TrainedCandidate, compare, scores_of, train_candidate

ML_PACKAGE = Path(__file__).resolve().parents[1] / "training_pipeline" / "ml"
QUICK = TuningConfig(n_trials=4, timeout_s=None, n_folds=2, n_threads=1, seed=0)


@pytest.fixture(scope="module")
def weeks() -> pd.DataFrame:
    return store_weeks()


@pytest.fixture(scope="module")
def sales(weeks: pd.DataFrame) -> ProblemSpec:
    return resolve_roles(SALES, weeks)[0]


@pytest.fixture(scope="module")
def candidate(weeks: pd.DataFrame, sales: ProblemSpec) -> TrainedCandidate:
    return train_candidate(weeks, sales, QUICK)


def regression_metrics(rmse: float) -> Metrics:
    return Metrics(task="regression", values={"rmse": rmse, "mae": rmse * 0.8}, n_rows=100,
                   label_mean=500.0)  # fmt: skip


def binary_spec(**changes) -> ProblemSpec:
    fields = {
        "name": "conversion",
        "description": "Scores visitors by the chance that they buy.",
        "label_description": "true when the visit ended in a purchase.",
        "relation": "features.visits",
        "id_column": "visit_id",
        "label": "bought",
        "holdout": Holdout(last_periods=None, fraction=0.2),
        "gate": GatePolicy("roc_auc", floor=0.6),
    }
    return ProblemSpec(**(fields | changes))


def test_inferred_roles_are_reported_and_dates_ids_and_the_label_are_never_features(weeks):
    spec, roles = resolve_roles(SALES, weeks)
    assert roles.numeric == ("footfall", "promotions", "temperature")
    assert roles.categorical == ("region",)
    assert roles.excluded == ("opened",)
    assert spec.features == ("footfall", "promotions", "temperature", "region")
    assert roles.to_dict()["excluded"] == ["opened"]


def test_an_explicit_exclude_list_keeps_a_column_out_and_is_reported(weeks):
    spec, roles = resolve_roles(dataclasses.replace(SALES, exclude=("temperature",)), weeks)
    assert "temperature" not in spec.features
    assert roles.excluded == ("temperature", "opened")


def test_features_are_refused_until_roles_are_resolved():
    with pytest.raises(ValueError, match="feature roles are not known yet; call resolve_roles"):
        _ = SALES.features


def test_a_regression_problem_goes_through_tuning_evaluation_gate_and_model_card(
    candidate, sales, weeks
):
    assert candidate.threshold is None
    assert candidate.tuning.metric == "rmse"
    assert candidate.tuning.family in ("hist_gradient_boosting", "ridge", "random_forest")
    # The planted signal leaves noise of sd 25; predicting the mean would be far worse.
    assert candidate.metrics["rmse"] < 35 < float(weeks["sales"].std())
    assert set(candidate.metrics.values) == {"rmse", "mae", "r2"}
    decision = gate(candidate.metrics, None, sales.gate)
    assert decision.passed, decision.reasons
    assert (
        decision.reasons[0].startswith("challenger RMSE")
        and "within the ceiling" in (decision.reasons[0])
    )
    card = model_card(
        version="v1",
        family=candidate.tuning.family,
        params=candidate.tuning.params,
        spec=sales,
        metrics=candidate.metrics,
        decision=decision,
        data={"train_rows": candidate.train_rows},
    )
    assert "# Model card: `store_sales` model `v1`" in card
    assert SALES.description in card and SALES.label_description in card
    assert "| RMSE |" in card and "| region | north |" in card
    assert not re.search("churn|customer", card, re.IGNORECASE)


def test_a_regression_holdout_compares_challenger_and_champion_in_a_regression_report(
    candidate, sales, weeks
):
    _, holdout = holdout_split(weeks, sales)
    result = compare(candidate.model, None, candidate.model, None, holdout, sales, None, "drift")
    assert result.decision.passed and result.champion is not None
    assert result.decision.interval.difference == 0 and "within noise" in result.decision.reasons[1]
    idle = compare(candidate.model, None, candidate.model, None, holdout, sales)
    assert not idle.decision.passed and "nothing justifies" in idle.decision.reasons[1]
    assert result.champion["rmse"] == pytest.approx(result.challenger["rmse"])
    summary = comparison_markdown(result.challenger, result.champion, result.decision, "v2", "v1")
    assert "| RMSE |" in summary and "threshold" not in summary
    page = validation_report_html(
        holdout, sales, result.challenger_scores, result.champion_scores, summary
    )
    assert "Gate PASSED" in page and "churn" not in page.lower()


def rmse_interval(challenger: float, champion: float, spread: float) -> DifferenceInterval:
    difference = challenger - champion
    return DifferenceInterval(
        "rmse", challenger, champion, difference, difference - spread,
        difference + spread, 0.95, 300, 1000, False,
    )  # fmt: skip


def test_a_lower_is_better_gate_blocks_a_worse_challenger_and_passes_one_within_the_margin():
    policy = GatePolicy("rmse", ceiling=40.0, tolerance=1.0)
    worse = gate(
        regression_metrics(27.0), regression_metrics(25.0), policy, rmse_interval(27, 25, 0.5)
    )
    assert not worse.passed
    assert "is within the ceiling 40.0000" in worse.reasons[0]
    assert "RMSE difference +2.0000 (95% CI +1.5000 to +2.5000" in worse.reasons[1]
    assert "by more than the margin 1.0000" in worse.reasons[1]
    close = rmse_interval(25.25, 25.0, 0.5)
    assert gate(regression_metrics(25.25), regression_metrics(25.0), policy, close, "drift").passed
    better = rmse_interval(22.0, 25.0, 1.0)
    decision = gate(regression_metrics(22.0), regression_metrics(25.0), policy, better)
    assert decision.passed and "better than the champion beyond noise" in decision.reasons[1]
    over = gate(regression_metrics(41.0), None, policy)
    assert not over.passed and "is above the ceiling 40.0000" in over.reasons[0]


def test_the_regression_smoke_test_wants_finite_varying_predictions(candidate, sales, weeks):
    canary = weeks.tail(30)
    assert smoke_test(candidate.model, canary, sales).passed

    class Constant:
        def predict(self, x):
            return np.full(len(x), 3.0)

    result = smoke_test(Constant(), canary, sales)
    assert not result.passed and result.reasons == ("all 30 predictions are identical (3.0)",)


def test_prediction_drift_names_the_spec_score_column_and_feature_drift_uses_inferred_roles(
    candidate, sales, weeks
):
    reference = reference_snapshots(weeks, sales)
    assert reference["week"].nunique() == sales.drift.reference_periods
    drift = prediction_drift(scores_of(candidate.model, reference, sales), [1e4] * 50, sales)
    assert drift.drifted_columns == ("score",) and drift.severity == "error"
    # The reference itself with one column moved: only that column can drift.
    shifted = reference.assign(footfall=reference["footfall"] * 3)
    features = feature_drift(reference, shifted, sales)
    assert features.drifted_columns == ("footfall",)
    assert features.severity == "warn"  # 1 of 4 columns: above warn_share 0, below 0.5
    lenient = dataclasses.replace(sales, drift=dataclasses.replace(sales.drift, warn_share=0.3))
    assert feature_drift(reference, shifted, lenient).severity == "none"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"primary_metric": "rmse"},
            "primary_metric: 'rmse' is not a binary metric tuning can rank by; "
            "allowed: roc_auc, pr_auc, log_loss, brier",
        ),
        (
            {"report_metrics": ("roc_auc", "mae")},
            "report_metrics: 'mae' is not a binary metric; allowed: roc_auc, pr_auc, log_loss, "
            "brier, f1",
        ),
        (
            {"task": "regression", "gate": GatePolicy("roc_auc", floor=0.6)},
            "gate.metric: 'roc_auc' is not a regression metric; allowed: rmse, mae, r2",
        ),
        (
            {"families": ("ridge",)},
            "families: 'ridge' is not a binary family; allowed: hist_gradient_boosting, "
            "logistic_regression, random_forest",
        ),
        ({"task": "ranking"}, "task: 'ranking' is not a task; allowed: binary, regression"),
        ({"holdout": Holdout()}, "holdout.fraction: required when there is no time_column"),
        ({"holdout": Holdout(fraction=0.7)}, r"holdout.fraction: must be in \(0, 0.5\)"),
        ({"numeric": ("bought",)}, r"numeric: \['bought'\] are the id, time or label column"),
        ({"name": "Conversion!"}, "name: 'Conversion!' must match"),
    ],
)
def test_a_field_that_does_not_fit_the_task_is_refused_naming_the_field_and_what_is_allowed(
    changes, message
):
    with pytest.raises(ValueError, match=f"^{message}"):
        binary_spec(**changes)


def test_a_fraction_holdout_and_the_folds_are_stratified_by_class_without_a_time_column():
    rng = np.random.default_rng(1)
    n = 1000
    signal = rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "visit_id": np.arange(n),
            "pages": signal + rng.normal(size=n),
            "device": rng.choice(["phone", "desktop"], n).astype(object),
            "bought": (signal > 1.28).astype(int),  # ~10% positives
        }
    )
    spec = resolve_roles(binary_spec(), frame)[0]
    train, holdout = holdout_split(frame, spec)
    assert len(holdout) == 200 and len(train) == 800
    positives = frame["bought"].sum()
    assert abs(holdout["bought"].sum() - positives * 0.2) <= 1
    assert set(train["visit_id"]).isdisjoint(holdout["visit_id"])
    for _, valid_idx in cv_folds(train, spec, n_folds=4):
        assert abs(train["bought"].to_numpy()[valid_idx].mean() - train["bought"].mean()) < 0.01
    trained = train_candidate(frame, spec, QUICK)
    assert trained.threshold is not None and trained.metrics["roc_auc"] > 0.8


def test_nothing_in_the_ml_package_names_the_churn_problem():
    hits = [
        f"{path.name}:{number}"
        for path in sorted(ML_PACKAGE.glob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if "churn" in line.lower()
    ]
    assert hits == []


def test_a_training_set_manifest_from_a_binary_only_release_still_reads(tmp_path):
    """Regression: registry copies of older manifests name the label mean positive_rate."""
    manifest = tmp_path / "abc.json"
    fields = {
        "path": str(tmp_path / "abc.parquet"),
        "fingerprint": "abc",
        "rows": 10,
        "snapshots": 2,
        "first_snapshot": "2025-01-06",
        "last_snapshot": "2025-01-13",
        "positive_rate": 0.25,
        "batches": ["b1"],
    }
    manifest.write_text(json.dumps(fields), encoding="utf-8")
    dataset = TrainingSet.from_manifest(manifest)
    assert dataset.label_mean == 0.25 and dataset.batches == ("b1",)
