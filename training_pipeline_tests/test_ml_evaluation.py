"""Holdout metrics, the F1 threshold and the promotion gate."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from synthetic_churn import churn_snapshots

from training_pipeline.ml.comparison import DifferenceInterval
from training_pipeline.ml.evaluation import (
    GatePolicy,
    Metrics,
    choose_threshold,
    evaluate,
    gate,
)
from training_pipeline.ml.splits import holdout_split
from training_pipeline.ml.tuning import fit_final
from training_pipeline_tests.churn_model import CHURN

POLICY = GatePolicy("roc_auc", floor=0.65, tolerance=0.02)


@pytest.fixture(scope="module")
def split() -> tuple[pd.DataFrame, pd.DataFrame]:
    return holdout_split(churn_snapshots(n_customers=300, n_snapshots=20), CHURN)


@pytest.fixture(scope="module")
def good(split) -> Metrics:
    train, holdout = split
    model = fit_final(train, CHURN, "logistic_regression", {"C": 1.0})
    return evaluate(model, holdout, CHURN, threshold=0.3)


def with_auc(metrics: Metrics, auc: float) -> Metrics:
    return Metrics.from_dict(metrics.to_dict() | {"roc_auc": auc})


def interval(challenger: float, champion: float, spread: float) -> DifferenceInterval:
    """A paired ROC AUC interval of +-``spread`` around the difference."""
    difference = challenger - champion
    return DifferenceInterval(
        "roc_auc", challenger, champion, difference, difference - spread,
        difference + spread, 0.95, 500, 1000, True,
    )  # fmt: skip


def test_a_model_trained_on_shuffled_labels_scores_near_chance_and_the_gate_blocks_it(split, good):
    train, holdout = split
    shuffled = train.assign(churned=np.random.default_rng(0).permutation(train["churned"]))
    model = fit_final(shuffled, CHURN, "hist_gradient_boosting", {"max_iter": 50})
    metrics = evaluate(model, holdout, CHURN, threshold=0.5)
    assert metrics["roc_auc"] == pytest.approx(0.5, abs=0.08)
    paired = interval(metrics["roc_auc"], good["roc_auc"], 0.03)
    decision = gate(metrics, good, POLICY, paired, replacement="new data")
    assert not decision.passed
    assert decision.champion_value == good["roc_auc"] > 0.75
    assert "below the floor" in decision.reasons[0]
    assert "worse than the champion by more than the margin 0.0200" in decision.reasons[1]


def test_the_gate_passes_a_good_challenger_when_there_is_no_champion(good):
    decision = gate(good, None, POLICY)
    assert decision.passed
    assert decision.champion_value is None
    assert decision.reasons[1] == "no champion to compare against"


def test_the_gate_blocks_a_challenger_below_the_floor_even_without_a_champion(good):
    decision = gate(with_auc(good, 0.64), None, POLICY)
    assert not decision.passed
    assert "0.6400 is below the floor 0.6500" in decision.reasons[0]


def test_the_gate_blocks_a_challenger_whose_interval_reaches_below_the_margin(good):
    # Regression: a challenger 0.009 worse on a noisy holdout was promoted.
    paired = interval(0.791, 0.80, 0.015)
    decision = gate(with_auc(good, 0.791), with_auc(good, 0.80), POLICY, paired, "new data")
    assert not decision.passed
    assert "meets the floor" in decision.reasons[0]
    assert "ROC AUC difference -0.0090 (95% CI -0.0240 to +0.0060" in decision.reasons[1]
    assert "worse than the champion by more than the margin 0.0200" in decision.reasons[1]


def test_a_challenger_within_noise_is_promoted_only_with_new_data_or_drift(good):
    paired = interval(0.801, 0.80, 0.01)
    challenger, champion = with_auc(good, 0.801), with_auc(good, 0.80)
    idle = gate(challenger, champion, POLICY, paired)
    assert not idle.passed
    assert "within noise" in idle.reasons[1] and "nothing justifies replacing" in idle.reasons[1]
    retrained = gate(challenger, champion, POLICY, paired, "it was trained on new data")
    assert retrained.passed
    assert retrained.reasons[1].endswith("promoted because it was trained on new data")
    assert (retrained.challenger_value, retrained.champion_value) == (0.801, 0.80)


def test_a_challenger_better_beyond_noise_passes_without_a_reason_to_replace(good):
    paired = interval(0.85, 0.80, 0.02)
    decision = gate(with_auc(good, 0.85), with_auc(good, 0.80), POLICY, paired)
    assert decision.passed and "better than the champion beyond noise" in decision.reasons[1]
    assert decision.to_dict()["interval"]["verdict"] == "better"


def test_the_gate_passes_a_challenger_exactly_at_the_floor_and_at_the_margin(good):
    # Exactly representable values, so the boundary is tested without rounding noise.
    policy = GatePolicy("roc_auc", floor=0.625, tolerance=0.125)
    paired = interval(0.625, 0.75, 0.0)
    assert gate(with_auc(good, 0.625), with_auc(good, 0.75), policy, paired, "drift").passed


def test_the_gate_refuses_a_champion_without_the_paired_interval(good):
    with pytest.raises(ValueError, match="needs the paired interval of roc_auc"):
        gate(good, good, POLICY)


def test_a_gate_policy_with_a_negative_tolerance_or_a_bound_against_the_direction_is_refused():
    with pytest.raises(ValueError, match="gate.tolerance: must not be negative"):
        GatePolicy("roc_auc", floor=0.7, tolerance=-0.01)
    with pytest.raises(ValueError, match="gate.ceiling: roc_auc is higher-is-better"):
        GatePolicy("roc_auc", ceiling=0.7)
    with pytest.raises(ValueError, match="gate.floor: log_loss is lower-is-better"):
        GatePolicy("log_loss", floor=0.7)
    with pytest.raises(ValueError, match="exactly one of floor"):
        GatePolicy("roc_auc", floor=0.7, ceiling=0.9)
    with pytest.raises(ValueError, match="gate.metric: 'auc' is not a metric; allowed: roc_auc"):
        GatePolicy("auc", floor=0.7)
    with pytest.raises(ValueError, match=r"gate.confidence: must be in \(0.5, 1\), got 1.0"):
        GatePolicy("roc_auc", floor=0.7, confidence=1.0)
    with pytest.raises(ValueError, match="gate.resamples: must be at least 100, got 5"):
        GatePolicy("roc_auc", floor=0.7, resamples=5)


def test_the_threshold_maximises_f1_on_a_hand_checked_example():
    # >= 0.3 flags rows 2..5: precision 3/4, recall 1, F1 0.857, the best cut-off.
    y_true = np.array([0, 0, 1, 1, 0, 1])
    assert choose_threshold(y_true, np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])) == 0.3


def test_the_threshold_breaks_f1_ties_towards_the_higher_cut_off():
    # >= 0.1 and >= 0.4 both give F1 2/3; the higher one flags fewer customers.
    y_true = np.array([1, 0, 0, 1])
    assert choose_threshold(y_true, np.array([0.1, 0.2, 0.3, 0.4])) == 0.4


def test_the_threshold_refuses_single_class_labels_and_mismatched_lengths():
    with pytest.raises(ValueError, match="single class"):
        choose_threshold(np.zeros(4), np.array([0.1, 0.2, 0.3, 0.4]))
    with pytest.raises(ValueError, match="4 labels but 3 scores"):
        choose_threshold(np.array([0, 1, 0, 1]), np.array([0.1, 0.2, 0.3]))


def test_metrics_survive_a_strict_json_round_trip(good):
    text = json.dumps(good.to_dict(), allow_nan=False)
    assert Metrics.from_dict(json.loads(text)) == good


def test_the_calibration_table_has_ten_equal_bins_that_track_the_observed_rate(split, good):
    bins = good.calibration
    assert len(bins) == 10
    assert sum(b.n_rows for b in bins) == good.n_rows == len(split[1])
    assert max(b.n_rows for b in bins) - min(b.n_rows for b in bins) <= 1
    predicted = [b.mean_predicted for b in bins]
    assert predicted == sorted(predicted)
    gaps = [abs(b.mean_predicted - b.observed_mean) for b in bins]
    assert np.mean(gaps) < 0.08


def test_slices_cover_every_country_and_segment_with_nulls_as_missing(good):
    by_column: dict[str, list] = {}
    for s in good.slices:
        by_column.setdefault(s.column, []).append(s)
    assert set(by_column) == {"country_code", "segment"}
    assert all(sum(s.n_rows for s in slices) == good.n_rows for slices in by_column.values())
    assert "missing" in {s.value for s in by_column["country_code"]}
    assert all(s.metric == "roc_auc" and s.score is not None for s in by_column["segment"])


def test_a_slice_holding_a_single_class_gets_no_auc(split):
    train, holdout = split
    model = fit_final(train, CHURN, "logistic_regression", {"C": 1.0})
    holdout = holdout.copy()
    holdout.loc[holdout["segment"] == "enterprise", "churned"] = 0
    metrics = evaluate(model, holdout, CHURN, threshold=0.3)
    (enterprise,) = [s for s in metrics.slices if s.value == "enterprise"]
    assert enterprise.score is None and enterprise.label_mean == 0.0


def test_evaluate_names_a_missing_feature_column_and_refuses_a_single_class_frame(split):
    train, holdout = split
    model = fit_final(train, CHURN, "logistic_regression", {"C": 1.0})
    with pytest.raises(ValueError, match="missing spec column.*recency_days"):
        evaluate(model, holdout.drop(columns="recency_days"), CHURN, threshold=0.3)
    with pytest.raises(ValueError, match="label 'churned' has a single class"):
        evaluate(model, holdout.assign(churned=0), CHURN, threshold=0.3)
