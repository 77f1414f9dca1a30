"""The paired bootstrap of the metric difference between challenger and champion."""

from __future__ import annotations

import numpy as np
import pytest

from training_pipeline.ml.comparison import (
    BETTER,
    NOISE,
    WORSE,
    bootstrap_weights,
    paired_bootstrap,
    replacement_reason,
    weighted_metric,
)
from training_pipeline.ml.metrics import METRICS, compute
from training_pipeline.ml.status import gate_verdict


def binary_rows(n: int = 2000, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    signal = y + rng.normal(0, 1.0, n)
    return y, signal


def squash(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


@pytest.mark.parametrize("name", sorted(METRICS))
def test_each_weighted_metric_equals_scikit_learn_on_the_rows_repeated_by_their_weights(name):
    rng = np.random.default_rng(3)
    n = 300
    if METRICS[name].needs_probabilities or name == "f1":
        y = rng.integers(0, 2, n).astype(float)
        # Rounded scores make ties, which AUC counts half and AP groups.
        output = np.round(squash(y + rng.normal(0, 1.2, n)), 1)
    else:
        y = rng.normal(10, 3, n)
        output = y + rng.normal(0, 2, n)
    weights = bootstrap_weights(rng, n, 5)
    got = weighted_metric(name, y, output, 0.5, weights)
    for row, value in zip(weights.astype(int), got, strict=True):
        expanded = np.repeat(np.arange(n), row)
        assert value == pytest.approx(compute(name, y[expanded], output[expanded], 0.5), abs=1e-9)


def test_bootstrap_weights_draw_every_resample_with_n_rows():
    weights = bootstrap_weights(np.random.default_rng(0), 50, 7)
    assert weights.shape == (7, 50)
    assert (weights.sum(axis=1) == 50).all()


def test_identical_models_give_a_zero_difference_whose_interval_contains_zero():
    y, signal = binary_rows()
    interval = paired_bootstrap("roc_auc", y, squash(signal), squash(signal))
    assert interval.difference == 0 and interval.low <= 0 <= interval.high
    assert interval.verdict == NOISE


def test_a_clearly_better_model_has_an_interval_that_excludes_zero():
    y, signal = binary_rows()
    noisy = signal + np.random.default_rng(1).normal(0, 2.0, len(y))
    interval = paired_bootstrap("roc_auc", y, squash(signal), squash(noisy))
    assert interval.difference > 0.1
    assert 0 < interval.low < interval.difference < interval.high
    assert interval.verdict == BETTER and interval.improvement_low > 0
    assert "ROC AUC difference +0." in interval.text() and "better" in interval.text()


def test_a_slightly_different_model_is_within_noise():
    y, signal = binary_rows(n=500)
    nudged = signal + np.random.default_rng(2).normal(0, 0.05, len(y))
    interval = paired_bootstrap("roc_auc", y, squash(nudged), squash(signal))
    assert abs(interval.difference) < 0.005
    assert interval.low < 0 < interval.high and interval.verdict == NOISE


def test_for_a_lower_is_better_metric_a_smaller_error_is_the_better_direction():
    rng = np.random.default_rng(4)
    y = rng.normal(20, 5, 1000)
    precise, rough = y + rng.normal(0, 1, 1000), y + rng.normal(0, 3, 1000)
    better = paired_bootstrap("rmse", y, precise, rough)
    assert better.difference < 0 and better.high < 0
    assert better.verdict == BETTER and better.improvement_low == -better.high > 0
    worse = paired_bootstrap("rmse", y, rough, precise)
    assert worse.verdict == WORSE and worse.improvement_high < 0


def test_the_interval_is_the_same_for_the_same_seed_and_moves_with_another():
    y, signal = binary_rows(n=400)
    other = signal + np.random.default_rng(5).normal(0, 0.5, len(y))
    first = paired_bootstrap("pr_auc", y, squash(signal), squash(other), seed=1)
    assert first == paired_bootstrap("pr_auc", y, squash(signal), squash(other), seed=1)
    assert first != paired_bootstrap("pr_auc", y, squash(signal), squash(other), seed=2)


def test_f1_uses_each_models_own_threshold():
    y, signal = binary_rows(n=400)
    scores = squash(signal)
    same = paired_bootstrap(
        "f1", y, scores, scores, challenger_threshold=0.5, champion_threshold=0.5
    )
    assert same.difference == 0
    shifted = paired_bootstrap(
        "f1", y, scores, scores, challenger_threshold=0.5, champion_threshold=0.95
    )
    assert shifted.difference > 0 and shifted.verdict == BETTER


def test_bad_inputs_are_refused_naming_the_problem():
    y, signal = binary_rows(n=50)
    with pytest.raises(ValueError, match="50 labels but outputs of"):
        paired_bootstrap("roc_auc", y, signal, signal[:-1])
    with pytest.raises(ValueError, match="resamples: 10 is too few"):
        paired_bootstrap("roc_auc", y, signal, signal, resamples=10)
    with pytest.raises(ValueError, match="confidence: 1.5 is not between 0.5 and 1"):
        paired_bootstrap("roc_auc", y, signal, signal, confidence=1.5)
    rare = np.zeros(50)
    rare[0] = 1
    with pytest.raises(ValueError, match="ROC AUC is undefined on .* resamples of 50 rows"):
        paired_bootstrap("roc_auc", rare, signal, signal)


def test_a_no_better_model_may_replace_the_champion_only_for_new_data_or_drift():
    assert replacement_reason("aaa", "aaa", None) is None
    assert replacement_reason("aaa", "aaa", "new data") is None
    assert "new data" in replacement_reason("bbb", "aaa", None)
    drift = replacement_reason("aaa", "aaa", "feature drift ERROR (share 0.6)")
    assert drift == "the retrain was triggered by feature drift ERROR (share 0.6)"


def test_status_shows_a_versions_gate_with_its_difference_to_the_champion():
    y, signal = binary_rows(n=400)
    interval = paired_bootstrap("roc_auc", y, squash(signal), squash(signal))
    decision = {"passed": True, "interval": interval.to_dict()}
    assert gate_verdict(decision) == (
        "passed (roc_auc +0.0000 vs champion on 400 shared rows, 95% CI +0.0000 to "
        "+0.0000: within noise)"
    )
    assert gate_verdict({"passed": False, "interval": None}) == "failed"
