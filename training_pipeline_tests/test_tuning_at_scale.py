"""Tuning sized to the data: successive halving over fold samples, threads, time budgets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from synthetic_churn import churn_snapshots
from threadpoolctl import threadpool_info

from training_pipeline.ml import halving, tuning
from training_pipeline.ml.halving import rung_fractions, sample_order, subsample
from training_pipeline.ml.splits import holdout_split, snapshot_dates, time_folds
from training_pipeline.ml.studies import chosen
from training_pipeline.ml.tuning import TuningConfig, fit_final, out_of_fold_scores, tune
from training_pipeline.ml.workflow import train_candidate
from training_pipeline_tests.churn_model import CHURN

ROOT = Path(__file__).resolve().parents[1]
# ~9k training rows in the first of two folds: rungs of 1/9, 1/3 and every row.
LARGE = TuningConfig(
    n_trials=12,
    timeout_s=None,
    n_folds=2,
    seed=3,
    families=("logistic_regression",),
    n_threads=1,
    min_rung_rows=500,
)


@pytest.fixture(scope="module")
def snapshots() -> pd.DataFrame:
    return churn_snapshots(n_customers=1500, n_snapshots=20)


@pytest.fixture(scope="module")
def train(snapshots: pd.DataFrame) -> pd.DataFrame:
    return holdout_split(snapshots, CHURN)[0]


@pytest.fixture(scope="module")
def tuned(train: pd.DataFrame) -> tuning.TuningResult:
    return tune(train, CHURN, LARGE)


def test_rungs_grow_by_the_reduction_factor_up_to_every_row_from_at_least_the_minimum():
    assert rung_fractions(20_000, 3, 2_000, 4) == (1 / 9, 1 / 3, 1.0)
    # The flight data's 273k rows: four rungs below the full sample, the smallest 3.4k.
    assert rung_fractions(273_000, 3, 2_000, 4) == (1 / 81, 1 / 27, 1 / 9, 1 / 3, 1.0)
    assert rung_fractions(273_000, 3, 2_000, 2) == (1 / 9, 1 / 3, 1.0)
    # Small data: a single rung on every row, as before halving.
    assert rung_fractions(5_000, 3, 2_000, 4) == (1.0,)
    with pytest.raises(ValueError, match="reduction_factor must be at least 2"):
        TuningConfig(reduction_factor=1)


def test_a_rungs_sample_is_the_same_for_every_trial_and_nested_in_the_folds_training_rows(train):
    order = sample_order(train, CHURN, seed=3)
    assert np.array_equal(order, sample_order(train, CHURN, seed=3))
    assert not np.array_equal(order, sample_order(train, CHURN, seed=4))
    for train_idx, valid_idx in time_folds(train, CHURN, n_folds=2):
        ninth, third = (subsample(train_idx, order, f) for f in (1 / 9, 1 / 3))
        assert set(ninth) < set(third) < set(train_idx)
        assert len(third) == pytest.approx(len(train_idx) / 3, rel=0.02)
        assert np.array_equal(subsample(train_idx, order, 1.0), train_idx)
        # Time is respected: the sample only thins the fold's past.
        dates = snapshot_dates(train, CHURN)
        assert dates.iloc[third].max() < dates.iloc[valid_idx].min()


def test_a_subsample_keeps_every_snapshot_and_each_snapshots_class_balance(train):
    order = sample_order(train, CHURN, seed=0)
    train_idx, _ = time_folds(train, CHURN, n_folds=2)[-1]
    sample = subsample(train_idx, order, 1 / 9)
    full, thinned = train.iloc[train_idx], train.iloc[sample]
    by_date = full.groupby(CHURN.time_column)[CHURN.label]
    sample_by_date = thinned.groupby(CHURN.time_column)[CHURN.label]
    assert set(sample_by_date.groups) == set(by_date.groups)
    # Per snapshot and class, ceil(size / 9) rows: the positives' count is exact.
    expected = np.ceil(by_date.sum() / 9)
    assert (sample_by_date.sum() == expected).all()


def test_halving_prunes_most_trials_on_a_large_sample_after_their_smallest_rung(tuned):
    assert tuned.rung_fractions == (1 / 9, 1 / 3, 1.0)
    assert tuned.n_pruned > LARGE.n_trials / 2
    history = tuned.trial_history
    pruned = [t for t in history if t["state"] == "pruned"]
    assert all(t["stopped_by"] == "halving" and t["sample_fraction"] < 1 for t in pruned)
    at_smallest = [t for t in pruned if t["sample_fraction"] == 1 / 9]
    assert len(at_smallest) > len(pruned) / 2
    # Only trials that reached every row are scored; rung scores are kept per trial.
    assert all(len(t["rung_scores"]) == 3 for t in history if t["state"] == "complete")
    assert tuned.sample_fraction == 1.0


def test_the_seed_makes_a_halving_study_repeatable(train, tuned):
    again = tune(train, CHURN, LARGE)
    keys = ("state", "params", "rung_scores", "stopped_by")
    assert [[t[k] for k in keys] for t in again.trial_history] == [
        [t[k] for k in keys] for t in tuned.trial_history
    ]
    assert (again.family, again.params, again.cv_score) == (
        tuned.family,
        tuned.params,
        tuned.cv_score,
    )


def test_the_winners_kept_out_of_fold_scores_are_those_of_its_folds_refitted(train, tuned):
    kept_y, kept_scores = tuned.out_of_fold
    y, scores = out_of_fold_scores(train, CHURN, LARGE, tuned.family, tuned.params)
    assert np.array_equal(kept_y, y)
    assert np.allclose(kept_scores, scores)


def test_the_final_model_is_refit_on_all_training_rows(snapshots):
    config = replace(LARGE, n_trials=4)
    candidate = train_candidate(snapshots, CHURN, config, holdout_periods=2)
    train, holdout = holdout_split(snapshots, CHURN, 2)
    assert candidate.train_rows == len(train)
    refit = fit_final(train, CHURN, candidate.tuning.family, candidate.tuning.params)
    features = holdout[list(CHURN.features)]
    assert np.allclose(
        candidate.model.predict_proba(features), refit.predict_proba(features), atol=1e-12
    )
    # A model fitted on the largest subsample only would score the holdout differently.
    order = sample_order(train, CHURN, LARGE.seed)
    partial = fit_final(
        train.iloc[subsample(np.arange(len(train)), order, 1 / 3)],
        CHURN,
        candidate.tuning.family,
        candidate.tuning.params,
    )
    assert not np.allclose(candidate.model.predict_proba(features), partial.predict_proba(features))


class FakeClock:
    """Seconds that pass only when a fit 'runs': one second per 1,000 training rows."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_time_budget_stops_a_long_trial_between_rungs_before_it_overruns(train, monkeypatch):
    clock = FakeClock()
    real_fit_predict = halving.fit_predict

    def slow_fit_predict(x, y, fit_idx, valid_idx, build, output):
        clock.now += len(fit_idx) / 1_000
        return real_fit_predict(x, y, fit_idx, valid_idx, build, output)

    monkeypatch.setattr(halving, "_now", clock)
    monkeypatch.setattr(halving, "fit_predict", slow_fit_predict)
    fold_rows = [len(t) for t, _ in time_folds(train, CHURN, n_folds=2)]
    smallest_rung_s = sum(np.ceil(np.array(fold_rows) / 9)) / 1_000  # about 2 s
    budget = smallest_rung_s + 1.0  # room for the 1/9 rung, not for the 1/3 rung's ~6 s
    config = replace(LARGE, n_trials=1, timeout_s=budget)
    result = tune(train, CHURN, config)
    (trial,) = result.trial_history
    assert trial["state"] == "pruned" and trial["stopped_by"] == "time budget"
    assert trial["sample_fraction"] == 1 / 9 and len(trial["rung_scores"]) == 1
    assert clock.now <= budget
    # With nothing scored on every row, the best trial of the deepest rung reached wins.
    assert result.sample_fraction == 1 / 9 and result.out_of_fold is None
    assert result.cv_score == trial["rung_scores"][0]


def test_threads_reach_the_estimators_and_their_thread_pools(train, monkeypatch):
    seen: list[tuple[int | None, list[int]]] = []
    real_fit_predict = halving.fit_predict

    def recording_fit_predict(x, y, fit_idx, valid_idx, build, output):
        openmp = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"]
        seen.append((build().named_steps["model"].n_jobs, openmp))
        return real_fit_predict(x, y, fit_idx, valid_idx, build, output)

    monkeypatch.setattr(halving, "fit_predict", recording_fit_predict)
    config = replace(LARGE, n_trials=1, families=("random_forest",), n_threads=3)
    tune(train.iloc[::4], CHURN, config)
    assert seen and all(n_jobs == 3 and set(openmp) == {3} for n_jobs, openmp in seen)
    final = fit_final(train.iloc[::8], CHURN, "random_forest", {"n_estimators": 5}, n_threads=3)
    assert final.named_steps["model"].n_jobs == 3


def test_threads_default_to_the_cores_this_process_may_use():
    assert TuningConfig().n_threads == len(os.sched_getaffinity(0))


@pytest.mark.slow
def test_the_tuning_benchmark_prints_trial_counts_and_the_auc_difference(tmp_path):
    figures_path = tmp_path / "figures.json"
    command = [sys.executable, str(ROOT / "scripts" / "bench_tuning.py"), "--rows", "3000"]
    command += ["--budget", "5", "--trials", "3", "--threads", "1", "--min-rung-rows", "300"]
    command += ["--families", "logistic_regression"]
    command += ["--json", str(figures_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
    assert "holdout ROC AUC, budgeted - unbudgeted" in done.stdout
    figures = json.loads(figures_path.read_text())
    budgeted, unbudgeted = figures["budgeted"], figures["unbudgeted"]
    assert budgeted["completed"] + budgeted["pruned"] in (1, 2, 3)
    assert unbudgeted["completed"] + unbudgeted["pruned"] == 3
    assert all(0.5 < run["holdout_roc_auc"] <= 1 for run in (budgeted, unbudgeted))
    assert figures["budgeted"]["budget_s"] == 5
    assert isinstance(figures["holdout_roc_auc_difference"], float)


def a_trial(state: str, rung_scores: list[float]) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(
        state=optuna.trial.TrialState[state],
        value=rung_scores[-1] if state == "COMPLETE" else None,
        intermediate_values={3**k: v for k, v in enumerate(rung_scores)},
    )


def test_a_leader_stopped_by_the_budget_wins_over_a_lone_trial_that_went_all_the_way():
    study = optuna.create_study(direction="maximize")
    study.add_trials(
        [
            a_trial("COMPLETE", [0.70, 0.72, 0.75]),  # the first trial always climbs
            a_trial("PRUNED", [0.90, 0.93]),  # the leader, stopped by the time budget
            a_trial("PRUNED", [0.60]),
        ]
    )
    assert chosen(study).number == 1


def test_without_a_budget_stop_the_best_complete_trial_is_chosen():
    study = optuna.create_study(direction="maximize")
    study.add_trials(
        [
            a_trial("COMPLETE", [0.70, 0.72, 0.75]),
            a_trial("PRUNED", [0.69]),
            a_trial("COMPLETE", [0.71, 0.80, 0.88]),
            a_trial("PRUNED", [0.90, 0.79]),  # better on the small sample, pruned after
        ]
    )
    assert chosen(study).number == 2
