"""Time splits, model pipelines and Optuna tuning on small synthetic churn snapshots."""

from __future__ import annotations

import json
import re
import uuid

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from synthetic_churn import churn_snapshots

from training_pipeline.ml.splits import holdout_split, time_folds
from training_pipeline.ml.tuning import (
    TuningConfig,
    TuningResult,
    fit_final,
    optimization_history_html,
    out_of_fold_scores,
    tune,
)
from training_pipeline_tests.churn_model import CHURN

WINDOW = pd.Timedelta(CHURN.label_horizon)
FAMILIES = CHURN.families
# Few trials and two folds keep every tune here to a few seconds; small rungs make the
# ~2k-row folds go through successive halving (a 1/3 sample, then every row).  One thread:
# on a shared, overloaded machine OpenMP's spinning threads made fits ~15x slower.
SMALL = TuningConfig(n_trials=8, timeout_s=None, n_folds=2, n_threads=1, seed=7, min_rung_rows=500)
FEATURES = list(CHURN.features)


@pytest.fixture(scope="module")
def snapshots() -> pd.DataFrame:
    return churn_snapshots(n_customers=300, n_snapshots=20)


@pytest.fixture(scope="module")
def train(snapshots: pd.DataFrame) -> pd.DataFrame:
    return holdout_split(snapshots, CHURN)[0]


@pytest.fixture(scope="module")
def tuned(train: pd.DataFrame) -> TuningResult:
    return tune(train, CHURN, SMALL)


def fold_dates(frame: pd.DataFrame, idx: np.ndarray) -> pd.Series:
    return pd.to_datetime(frame[CHURN.time_column].iloc[idx])


def test_every_fold_validates_only_on_snapshots_after_all_its_training_snapshots(train):
    for train_idx, valid_idx in time_folds(train, CHURN, n_folds=3):
        assert fold_dates(train, train_idx).max() < fold_dates(train, valid_idx).min()


def test_folds_purge_exactly_the_training_snapshots_whose_label_window_reaches_validation(train):
    all_dates = set(pd.to_datetime(train[CHURN.time_column]))
    for train_idx, valid_idx in time_folds(train, CHURN, n_folds=3):
        start = fold_dates(train, valid_idx).min()
        kept = set(fold_dates(train, train_idx))
        assert kept == {d for d in all_dates if d + WINDOW <= start}
        # Weekly snapshots with a 30-day window: the four weeks before validation go.
        assert start - pd.Timedelta(days=28) not in kept
        assert start - pd.Timedelta(days=35) in kept


def test_folds_expand_and_their_validation_blocks_are_disjoint_and_ordered(train):
    folds = time_folds(train, CHURN, n_folds=3, valid_snapshots=2)
    sizes = [len(train_idx) for train_idx, _ in folds]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    blocks = [fold_dates(train, valid_idx) for _, valid_idx in folds]
    assert all(block.nunique() == 2 for block in blocks)
    assert all(a.max() < b.min() for a, b in zip(blocks, blocks[1:], strict=False))


def test_holdout_is_the_latest_snapshots_and_strictly_later_than_every_training_snapshot(
    snapshots,
):
    train, holdout = holdout_split(snapshots, CHURN, holdout_periods=2)
    dates = sorted(pd.to_datetime(snapshots[CHURN.time_column]).unique())
    holdout_dates = pd.to_datetime(holdout[CHURN.time_column])
    train_dates = pd.to_datetime(train[CHURN.time_column])
    assert set(holdout_dates) == set(dates[-2:])
    assert train_dates.max() < holdout_dates.min()
    assert train_dates.max() + WINDOW <= holdout_dates.min()


def test_snapshot_dates_as_python_dates_split_exactly_like_timestamps(train):
    # The warehouse may hand DATE columns over as datetime.date objects.
    as_dates = train.assign(snapshot_date=train["snapshot_date"].dt.date)
    for (a_train, a_valid), (b_train, b_valid) in zip(
        time_folds(train, CHURN), time_folds(as_dates, CHURN), strict=True
    ):
        assert np.array_equal(a_train, b_train) and np.array_equal(a_valid, b_valid)


def test_too_few_snapshots_for_the_folds_raise_a_clear_error():
    short = churn_snapshots(n_customers=30, n_snapshots=8)
    with pytest.raises(ValueError, match="too few time values for 3 folds"):
        time_folds(short, CHURN, n_folds=3)


def test_a_holdout_of_every_snapshot_is_refused(snapshots):
    with pytest.raises(ValueError, match="too few time values for a holdout"):
        holdout_split(snapshots, CHURN, holdout_periods=20)


def test_a_missing_feature_column_is_named_in_the_error(train):
    with pytest.raises(ValueError, match="missing spec column.*tickets_90d"):
        tune(train.drop(columns="tickets_90d"), CHURN, SMALL)
    with pytest.raises(ValueError, match="tickets_90d"):
        holdout_split(train.drop(columns="tickets_90d"), CHURN)


def test_single_class_labels_are_named_in_the_error(train):
    with pytest.raises(ValueError, match="label 'churned' has a single class"):
        tune(train.assign(churned=0), CHURN, SMALL)
    with pytest.raises(ValueError, match="single class"):
        fit_final(train.assign(churned=1), CHURN, "logistic_regression", {})


def test_an_unknown_model_family_is_refused():
    with pytest.raises(ValueError, match="unknown model family 'xgboost'"):
        TuningConfig(families=("xgboost",))


@pytest.mark.parametrize("family", FAMILIES)
def test_pipelines_score_nulls_and_unseen_categories_at_predict_time(train, family):
    model = fit_final(train, CHURN, family, {})
    odd = train[FEATURES].head(4).copy()
    odd[list(CHURN.numeric)] = np.nan
    odd["country_code"] = pd.array(["ZZ", None, pd.NA, "US"], dtype="string")
    odd["segment"] = [None, "galactic", np.nan, "smb"]
    scores = model.predict_proba(odd)[:, 1]
    assert np.isfinite(scores).all() and ((scores > 0) & (scores < 1)).all()


def test_the_refitted_model_learns_the_planted_signal(snapshots):
    train, holdout = holdout_split(snapshots, CHURN)
    model = fit_final(train, CHURN, "logistic_regression", {"C": 1.0})
    auc = roc_auc_score(holdout[CHURN.label], model.predict_proba(holdout[FEATURES])[:, 1])
    assert auc > 0.75


def test_two_tunes_with_the_same_seed_choose_the_same_family_params_and_score(train, tuned):
    again = tune(train, CHURN, SMALL)
    assert (again.family, again.params, again.cv_score) == (
        tuned.family,
        tuned.params,
        tuned.cv_score,
    )
    assert [t["params"] for t in again.trial_history] == [t["params"] for t in tuned.trial_history]


def test_tuning_reports_the_best_trial_and_every_trial_it_ran(tuned):
    assert tuned.n_trials_completed + tuned.n_pruned == len(tuned.trial_history) == SMALL.n_trials
    completed = [t for t in tuned.trial_history if t["state"] == "complete"]
    assert tuned.cv_score == max(t["value"] for t in completed)
    assert tuned.cv_score == pytest.approx(np.mean(tuned.fold_scores))
    assert len(tuned.fold_scores) == SMALL.n_folds
    assert tuned.cv_score > 0.7
    # With this seed some trials trail the best third on the 1/3 sample and stop there.
    assert tuned.rung_fractions == (1 / 3, 1.0) and tuned.sample_fraction == 1.0
    assert tuned.n_pruned >= 1
    pruned = [t for t in tuned.trial_history if t["state"] == "pruned"]
    assert all(t["value"] is None and t["sample_fraction"] < 1 for t in pruned)
    assert all(t["stopped_by"] == "halving" for t in pruned)
    assert json.loads(json.dumps(tuned.to_dict(), allow_nan=False))["family"] == tuned.family


def test_tuning_stops_at_the_time_budget_long_before_the_trial_budget(train):
    config = TuningConfig(n_trials=500, timeout_s=0.5, n_folds=2, n_threads=1)
    result = tune(train, CHURN, config)
    assert len(result.trial_history) in range(1, 500)


def test_the_study_persists_to_sqlite_and_reloads_by_name(train, tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    config = TuningConfig(
        n_trials=3,
        timeout_s=None,
        n_folds=2,
        n_threads=1,
        storage_url=storage,
        study_name="churn-run-1",
    )
    result = tune(train, CHURN, config)
    reloaded = optuna.load_study(study_name="churn-run-1", storage=storage)
    assert len(reloaded.trials) == 3
    assert reloaded.best_value == result.cv_score
    assert reloaded.best_trial.user_attrs["params"] == result.params


def test_rerunning_a_stored_study_resumes_it_without_exceeding_the_trial_budget(train, tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    config = TuningConfig(
        n_trials=3,
        timeout_s=None,
        n_folds=2,
        n_threads=1,
        storage_url=storage,
        study_name="churn-run-2",
    )
    first, retried = tune(train, CHURN, config), tune(train, CHURN, config)
    assert len(retried.trial_history) == 3
    assert (retried.family, retried.params) == (first.family, first.params)


def test_a_stored_study_is_never_mixed_with_another_runs_data(train, tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    config = TuningConfig(
        n_trials=2,
        timeout_s=None,
        n_folds=2,
        n_threads=1,
        storage_url=storage,
        study_name="churn-run-3",
    )
    tune(train, CHURN, config)
    with pytest.raises(ValueError, match="already exists.*include the run id"):
        tune(train.iloc[:-300], CHURN, config)


def test_a_clashing_study_in_a_server_storage_is_reported_with_the_password_masked(train):
    sqlalchemy = pytest.importorskip("sqlalchemy")
    # PostgreSQL trusts local connections, so any password gets in and must stay hidden.
    storage = "postgresql+psycopg://postgres:Pw-not-for-logs@127.0.0.1:5432/test"
    try:
        sqlalchemy.create_engine(storage).connect().close()
    except sqlalchemy.exc.OperationalError as error:
        pytest.skip(f"no PostgreSQL reachable at 127.0.0.1:5432 ({error.orig})")
    name = f"churn-clash-{uuid.uuid4().hex}"
    config = TuningConfig(
        n_trials=1, timeout_s=None, n_folds=2, n_threads=1, storage_url=storage, study_name=name
    )
    try:
        tune(train, CHURN, config)
        with pytest.raises(ValueError, match="already exists") as raised:
            tune(train.iloc[:-300], CHURN, config)
        assert "postgres:***@127.0.0.1" in str(raised.value)
        assert "Pw-not-for-logs" not in str(raised.value)
    finally:
        optuna.delete_study(study_name=name, storage=storage)


def test_out_of_fold_scores_cover_exactly_the_validation_rows(train):
    y_true, scores = out_of_fold_scores(train, CHURN, SMALL, "logistic_regression", {"C": 1.0})
    folds = time_folds(train, CHURN, SMALL.n_folds, SMALL.valid_snapshots)
    assert len(y_true) == len(scores) == sum(len(valid_idx) for _, valid_idx in folds)
    assert roc_auc_score(y_true, scores) > 0.75


def test_the_trial_history_html_inlines_plotly_and_links_no_external_script(tuned):
    html = optimization_history_html(tuned.study)
    assert "Plotly.newPlot" in html and len(html) > 1_000_000  # plotly.js itself is inlined
    assert not re.search(r"<script[^>]*\bsrc\s*=\s*[\"']?(https?:)?//", html, re.IGNORECASE)
