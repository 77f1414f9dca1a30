"""Hyperparameter search with Optuna over model family and parameters, on purged time folds.

The family is itself a categorical hyperparameter, so one study compares gradient
boosting, logistic regression and random forests on equal terms.  Trials report each
fold's score as they go (oldest, cheapest fold first) so the pruner can stop a trial
that trails the median of earlier trials on the same fold.  The budget is trials *and*
seconds, whichever runs out first; while the trial budget is the one that binds, the
same data and seed give the same result.  The seconds hold inside a trial too: a fold
that would end past the deadline (judged by the trial's previous fold) is not started,
the trial is pruned and the study stops, once at least one trial has completed (the
first one always completes, so there is a model to return).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import optuna
import pandas as pd
import sqlalchemy
from optuna.trial import TrialState
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from training_pipeline.ml.feature_spec import FeatureSpec
from training_pipeline.ml.pipelines import FAMILIES, build_pipeline, check_family, suggest_params
from training_pipeline.ml.splits import Fold, check_frame, time_folds

METRICS: dict[str, Callable[..., float]] = {
    "roc_auc": roc_auc_score,
    "pr_auc": average_precision_score,
}


@dataclass(frozen=True)
class TuningConfig:
    """What to search and for how long.

    ``study_name`` should carry the caller's run id: a stored study is resumed only by
    a run with the same data and settings, never mixed with another run's trials.
    ``n_threads`` caps OpenMP/BLAS threads: when other work shares the cores, spinning
    OpenMP threads made trials about 4x slower than one thread each.
    """

    n_trials: int = 20
    timeout_s: float | None = 60.0
    seed: int = 0
    n_folds: int = 3
    valid_snapshots: int = 2
    families: tuple[str, ...] = FAMILIES
    metric: str = "roc_auc"
    storage_url: str | None = None
    study_name: str = "churn"
    n_threads: int = 1

    def __post_init__(self) -> None:
        if self.n_trials < 1:
            raise ValueError(f"n_trials must be at least 1, got {self.n_trials}")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive or None, got {self.timeout_s}")
        if not self.families:
            raise ValueError("families must name at least one model family")
        for family in self.families:
            check_family(family)
        if self.n_threads < 1:
            raise ValueError(f"n_threads must be at least 1, got {self.n_threads}")
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; expected one of {tuple(METRICS)}")


@dataclass(frozen=True)
class TuningResult:
    """The chosen family and parameters, their CV score, and how the search went."""

    family: str
    params: dict[str, Any]
    cv_score: float
    fold_scores: list[float]
    metric: str
    n_trials_completed: int
    n_pruned: int
    duration_s: float
    trial_history: list[dict[str, Any]]
    study_name: str
    storage_url: str | None
    study: optuna.Study = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the live study (which ``asdict`` would try to deep-copy)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "study"}


def _xy(frame: pd.DataFrame, spec: FeatureSpec) -> tuple[pd.DataFrame, np.ndarray]:
    return frame[list(spec.features)], frame[spec.label].astype(int).to_numpy()


def _fold_scores(
    frame: pd.DataFrame, spec: FeatureSpec, folds: list[Fold], family: str, params: dict[str, Any]
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per fold, in order: the validation indices and the model's positive-class scores."""
    x, y = _xy(frame, spec)
    for train_idx, valid_idx in folds:
        model = build_pipeline(family, params, spec).fit(x.iloc[train_idx], y[train_idx])
        yield valid_idx, model.predict_proba(x.iloc[valid_idx])[:, 1]


def _checked_folds(frame: pd.DataFrame, spec: FeatureSpec, config: TuningConfig) -> list[Fold]:
    """Folds whose training and validation sets both hold both classes."""
    folds = time_folds(frame, spec, config.n_folds, config.valid_snapshots)
    y = frame[spec.label].to_numpy()
    for number, (train_idx, valid_idx) in enumerate(folds, start=1):
        for part, idx in (("training", train_idx), ("validation", valid_idx)):
            if len(np.unique(y[idx])) < 2:
                raise ValueError(f"fold {number} {part} rows have a single class of {spec.label!r}")
    return folds


def _fingerprint(frame: pd.DataFrame, spec: FeatureSpec, config: TuningConfig) -> str:
    """A hash of the data and search settings; a stored study only resumes on a match."""
    digest = hashlib.sha256(
        pd.util.hash_pandas_object(frame[list(spec.columns)], index=False).to_numpy().tobytes()
    )
    settings = {k: getattr(config, k) for k in ("seed", "n_folds", "valid_snapshots", "metric")}
    digest.update(json.dumps({**settings, "families": list(config.families)}).encode())
    return digest.hexdigest()[:16]


def _masked(url: str) -> str:
    """The storage URL with any password hidden, fit for an error message."""
    return sqlalchemy.make_url(url).render_as_string(hide_password=True)


def _open_study(config: TuningConfig, fingerprint: str) -> optuna.Study:
    study = optuna.create_study(
        storage=config.storage_url,
        study_name=config.study_name,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=config.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5),
        load_if_exists=True,
    )
    stored = study.user_attrs.get("fingerprint")
    if stored is None and study.trials:
        stored = "unknown"
    if stored not in (None, fingerprint):
        raise ValueError(
            f"study {config.study_name!r} already exists in {_masked(config.storage_url)} with "
            "other data "
            "or settings; give each run its own study name (include the run id)"
        )
    study.set_user_attr("fingerprint", fingerprint)
    return study


def _history(study: optuna.Study) -> list[dict[str, Any]]:
    return [
        {
            "number": t.number,
            "state": t.state.name.lower(),
            "family": t.params.get("family"),
            # Optuna gives a pruned trial its last fold's score; that is no CV score.
            "value": t.value if t.state == TrialState.COMPLETE else None,
            "params": t.user_attrs.get("params"),
            "fold_scores": [t.intermediate_values[k] for k in sorted(t.intermediate_values)],
            "duration_s": None if t.duration is None else t.duration.total_seconds(),
        }
        for t in study.trials
    ]


STOPPED_BY = "stopped_by"


def _over_budget(
    deadline: float | None, now: float, next_fold_s: float, study: optuna.Study
) -> bool:
    """Would the next fold end past the deadline, with a completed trial to fall back on?"""
    if deadline is None or now + next_fold_s <= deadline:
        return False
    return bool(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def _stop_for_time(trial: optuna.Trial, study: optuna.Study) -> None:
    trial.set_user_attr(STOPPED_BY, "time budget")
    study.stop()  # no further trial starts
    raise optuna.TrialPruned("the tuning time budget is spent")


def tune(
    train: pd.DataFrame,
    spec: FeatureSpec,
    config: TuningConfig,
    clock: Callable[[], float] = time.perf_counter,
) -> TuningResult:
    """Search family and hyperparameters by mean score over purged time folds.

    Args:
        train: Labelled training rows; the holdout must already be removed.
        spec: The feature spec.
        config: Budget, seed, folds, families, metric and where to store the study.
        clock: Seconds, monotonic; the time budget is measured on it.

    Returns:
        The best trial's family, parameters and scores, and the trial history.

    Raises:
        ValueError: Bad frame, too few snapshots, a single-class fold, or a stored
            study of the same name from another run.
    """
    started = clock()
    deadline = None if config.timeout_s is None else started + config.timeout_s
    check_frame(train, spec)
    folds = _checked_folds(train, spec, config)
    score = METRICS[config.metric]
    y = train[spec.label].astype(int).to_numpy()

    def objective(trial: optuna.Trial) -> float:
        family = trial.suggest_categorical("family", list(config.families))
        params = suggest_params(trial, family)
        trial.set_user_attr("params", params)
        scores: list[float] = []
        fold_started = clock()
        if _over_budget(deadline, fold_started, 0.0, study):  # the time is already up
            _stop_for_time(trial, study)
        for step, (valid_idx, predicted) in enumerate(
            _fold_scores(train, spec, folds, family, params)
        ):
            scores.append(float(score(y[valid_idx], predicted)))
            trial.report(scores[-1], step)
            # After the last fold the work is done: score the trial rather than prune it.
            if step == len(folds) - 1:
                break
            if trial.should_prune():
                raise optuna.TrialPruned()
            now = clock()
            fold_s, fold_started = now - fold_started, now
            if _over_budget(deadline, now, fold_s, study):
                _stop_for_time(trial, study)
        return float(np.mean(scores))

    study = _open_study(config, _fingerprint(train, spec, config))
    finished = [t for t in study.trials if t.state.is_finished()]
    remaining = config.n_trials - len(finished)
    if remaining > 0:
        with threadpool_limits(config.n_threads):
            study.optimize(objective, n_trials=remaining, timeout=config.timeout_s)
    best = study.best_trial
    states = [t.state for t in study.trials]
    return TuningResult(
        family=best.params["family"],
        params=best.user_attrs["params"],
        cv_score=float(best.value),
        fold_scores=[best.intermediate_values[k] for k in sorted(best.intermediate_values)],
        metric=config.metric,
        n_trials_completed=states.count(TrialState.COMPLETE),
        n_pruned=states.count(TrialState.PRUNED),
        duration_s=clock() - started,
        trial_history=_history(study),
        study_name=config.study_name,
        storage_url=config.storage_url,
        study=study,
    )


def out_of_fold_scores(
    train: pd.DataFrame,
    spec: FeatureSpec,
    config: TuningConfig,
    family: str,
    params: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray]:
    """Validation-fold labels and scores for one configuration, e.g. to pick a threshold.

    Uses the same folds as ``tune``, so the threshold never sees the holdout.

    Args:
        train: The rows ``tune`` was given.
        spec: The feature spec.
        config: The tuning config (its folds are reused).
        family: Model family.
        params: Estimator parameters.

    Returns:
        ``(y_true, scores)`` over every validation row, fold by fold.
    """
    check_frame(train, spec)
    y = train[spec.label].astype(int).to_numpy()
    folds = _checked_folds(train, spec, config)
    with threadpool_limits(config.n_threads):
        parts = list(_fold_scores(train, spec, folds, family, params))
    return (
        np.concatenate([y[idx] for idx, _ in parts]),
        np.concatenate([predicted for _, predicted in parts]),
    )


def fit_final(
    train: pd.DataFrame,
    spec: FeatureSpec,
    family: str,
    params: dict[str, Any],
    n_threads: int = 1,
) -> Pipeline:
    """Refit the chosen configuration on every training row.

    Args:
        train: Labelled training rows.
        spec: The feature spec.
        family: Model family.
        params: Estimator parameters.
        n_threads: Cap on OpenMP/BLAS threads while fitting.

    Returns:
        The fitted pipeline; it takes ``frame[list(spec.features)]``.
    """
    check_frame(train, spec)
    x, y = _xy(train, spec)
    with threadpool_limits(n_threads):
        return build_pipeline(family, params, spec).fit(x, y)


def optimization_history_html(study: optuna.Study) -> str:
    """The trial history plot as one self-contained HTML page (plotly.js inlined, no CDN).

    Args:
        study: A study with at least one completed trial.

    Returns:
        A full HTML document that renders offline.
    """
    figure = optuna.visualization.plot_optimization_history(study)
    return figure.to_html(include_plotlyjs=True, full_html=True)
