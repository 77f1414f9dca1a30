"""Tuning fanned out over worker processes into one study on PostgreSQL."""

from __future__ import annotations

import dataclasses
import multiprocessing
import uuid
from collections import Counter
from collections.abc import Iterator

import optuna
import pandas as pd
import pytest
from postgres_helpers import fresh_database, url_text
from synthetic_churn import churn_snapshots

from training_pipeline.environment import SettingsError
from training_pipeline.ml.splits import holdout_split
from training_pipeline.ml.studies import refuse_repeat
from training_pipeline.ml.tuning import TuningConfig, tune
from training_pipeline.ml.tuning_workers import fan_out
from training_pipeline.settings import Settings
from training_pipeline_tests.churn_model import CHURN

SMALL = TuningConfig(n_trials=10, timeout_s=None, n_folds=2, n_threads=2, seed=7, min_rung_rows=500)


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return holdout_split(churn_snapshots(n_customers=300, n_snapshots=20), CHURN)[0]


@pytest.fixture
def study_storage() -> Iterator[str]:
    with fresh_database("tp_scale_core_tuning") as url:
        yield url_text(url, "psycopg2")


@pytest.mark.slow  # starts two worker processes
@pytest.mark.postgres
def test_two_tuning_workers_share_one_study_with_distinct_seeds_and_a_capped_total(
    train, study_storage
):
    config = dataclasses.replace(
        SMALL, n_workers=2, storage_url=study_storage, study_name=f"fan-{uuid.uuid4().hex}"
    )
    result = tune(train, CHURN, config)

    trials = optuna.load_study(study_name=config.study_name, storage=study_storage).trials
    assert len(trials) == config.n_trials  # capped exactly, not one more per worker
    seeds = Counter(t.user_attrs.get("worker_seed") for t in trials)
    assert set(seeds) == {7, 8}, seeds  # both workers ran trials into the one study
    evaluated = [t for t in trials if t.intermediate_values]
    parameter_sets = [tuple(sorted(t.params.items())) for t in evaluated]
    assert len(set(parameter_sets)) == len(parameter_sets)
    # The result is read from the shared study, whichever worker ran the winner.
    assert result.n_trials_completed + result.n_pruned == config.n_trials
    assert result.params == trials[_best_number(result, trials)].user_attrs["params"]


def _best_number(result, trials) -> int:
    (number,) = [
        t.number
        for t in trials
        if t.user_attrs.get("params") == result.params
        and t.user_attrs.get("cv_score") == result.cv_score
    ]
    return number


def test_several_tuning_workers_are_refused_on_a_sqlite_study(tmp_path):
    with pytest.raises(ValueError, match="2 tuning workers need a study storage every worker"):
        dataclasses.replace(SMALL, n_workers=2, storage_url=f"sqlite:///{tmp_path}/o.db")


def test_a_repeated_parameter_set_is_pruned_before_it_is_evaluated():
    study = optuna.create_study()
    study.enqueue_trial({"x": 1})
    study.enqueue_trial({"x": 1})
    evaluated = []

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_int("x", 0, 3)
        refuse_repeat(trial)
        evaluated.append(trial.number)
        return 0.0

    study.optimize(objective, n_trials=2)
    assert evaluated == [0]
    assert study.trials[1].state == optuna.trial.TrialState.PRUNED
    assert study.trials[1].user_attrs["stopped_by"] == "repeats trial 0"


def test_the_settings_refuse_several_tuning_workers_without_a_shared_study_storage(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("TRAINING_PIPELINE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TRAINING_PIPELINE_TUNING_WORKERS", "2")
    monkeypatch.delenv("TRAINING_PIPELINE_OPTUNA_STORAGE", raising=False)
    with pytest.raises(SettingsError, match="TRAINING_PIPELINE_TUNING_WORKERS=2 needs a study"):
        Settings.from_env()
    monkeypatch.setenv("TRAINING_PIPELINE_OPTUNA_STORAGE", "postgresql+psycopg2://u:pw@db/optuna")
    assert Settings.from_env().tuning_workers == 2


def _fan_out_reporting(errors) -> None:
    config = dataclasses.replace(SMALL, n_workers=2, storage_url="postgresql+psycopg2://u@db/o")
    try:
        fan_out(pd.DataFrame(), CHURN, config, trials=2, seconds=10)
    except RuntimeError as error:
        errors.put(str(error))


@pytest.mark.integration  # a daemonic process of its own, importing the training stack
def test_a_fan_out_from_a_daemonic_process_is_refused_naming_the_celery_pool_to_use():
    # Regression: a step in a Celery prefork child (daemonic) failed with Python's bare
    # "daemonic processes are not allowed to have children".
    context = multiprocessing.get_context("spawn")
    errors = context.Queue()
    process = context.Process(target=_fan_out_reporting, args=(errors,), daemon=True)
    process.start()
    process.join(timeout=120)
    assert process.exitcode == 0
    assert "`--pool threads`" in errors.get(timeout=5)
