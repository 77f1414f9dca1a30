"""Hyperparameter search with Optuna over model family and parameters, on purged time folds.

The family is itself a categorical hyperparameter, so one study compares the task's
families (gradient boosting, a linear model, random forests) on equal terms.  A trial is scored on
subsamples of every fold's training rows that grow rung by rung (successive halving,
see ``halving``): only the best trials at a rung reach the next, and the last rung
trains on every row.  The budget is trials *and* seconds, whichever runs out first, and
the seconds bind inside a trial too: before each fit the trial checks that the fit, at
the speed measured on its own earlier fits, ends by the deadline, and is pruned if not
(a scikit-learn fit cannot be interrupted).  While the trial budget is the one that
binds, the same data and seed give the same result.  Trials may also fan out over
several worker processes sharing one stored study (``tuning_workers``); that search is
faster but not repeatable, since trials finish in whatever order the workers reach.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from training_pipeline.masking import password_masked
from training_pipeline.ml.halving import Deadline, default_threads, fit_predict, rung_fractions
from training_pipeline.ml.metrics import METRICS
from training_pipeline.ml.objective import build_objective, checked_folds, output_of, xy
from training_pipeline.ml.pipelines import build_pipeline, check_family
from training_pipeline.ml.problem import ProblemSpec
from training_pipeline.ml.splits import Fold, check_frame, labels_of
from training_pipeline.ml.studies import chosen, fingerprint, history, open_study
from training_pipeline.ml.tuning_workers import fan_out


@dataclass(frozen=True)
class TuningConfig:
    """What to search, for how long, and how the sample grows from rung to rung.

    ``study_name`` should carry the caller's run id: a stored study is resumed only by
    a run with the same data and settings, never mixed with another run's trials.
    ``n_threads`` caps OpenMP/BLAS threads and is the random forest's ``n_jobs``; it
    defaults to the cores this process may use.  Trials run one after another, so the
    sampler and the pruner see results in a fixed order.  ``reduction_factor``,
    ``min_rung_rows`` and ``max_rungs`` shape the rungs (``halving.rung_fractions``).
    ``families`` and ``metric`` left None mean the problem's families and primary metric.
    ``n_workers`` above 1 fans the trials out over that many processes, which share
    ``n_threads`` and need a ``storage_url`` every process can write (PostgreSQL).
    """

    n_trials: int = 20
    timeout_s: float | None = 60.0
    seed: int = 0
    n_folds: int = 3
    valid_snapshots: int = 2
    families: tuple[str, ...] | None = None
    metric: str | None = None
    storage_url: str | None = None
    study_name: str = "tuning"
    n_threads: int = field(default_factory=default_threads)
    reduction_factor: int = 3
    min_rung_rows: int = 2_000
    max_rungs: int = 4
    n_workers: int = 1

    def __post_init__(self) -> None:
        if self.n_trials < 1:
            raise ValueError(f"n_trials must be at least 1, got {self.n_trials}")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive or None, got {self.timeout_s}")
        if self.families is not None and not self.families:
            raise ValueError("families must name at least one model family")
        for family in self.families or ():
            check_family(family)
        if self.n_threads < 1:
            raise ValueError(f"n_threads must be at least 1, got {self.n_threads}")
        if self.n_workers < 1:
            raise ValueError(f"n_workers must be at least 1, got {self.n_workers}")
        if self.n_workers > 1 and (self.storage_url or "sqlite").startswith("sqlite"):
            raise ValueError(
                f"{self.n_workers} tuning workers need a study storage every worker can "
                f"write at once (PostgreSQL), not {password_masked(self.storage_url or 'memory')}"
            )
        if self.metric is not None and self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; expected one of {tuple(METRICS)}")
        rung_fractions(1, self.reduction_factor, self.min_rung_rows, self.max_rungs)


@dataclass(frozen=True)
class TuningResult:
    """The chosen family and parameters, their CV score, and how the search went.

    ``cv_score`` and ``fold_scores`` come from models trained on ``sample_fraction`` of
    each fold's rows: 1.0 unless the time budget ended before any trial reached the full
    sample; then the best trial at the deepest rung reached is chosen.  ``out_of_fold``
    holds that trial's validation labels and scores on the full sample when this call
    computed them (not after resuming a stored study, nor for a partial winner).
    """

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
    sample_fraction: float
    rung_fractions: tuple[float, ...]
    n_threads: int
    study: optuna.Study = field(repr=False, compare=False)
    out_of_fold: tuple[np.ndarray, np.ndarray] | None = field(
        default=None, repr=False, compare=False
    )

    def to_dict(self) -> dict[str, Any]:
        """Everything but the live study and the score arrays."""
        skip = {"study", "out_of_fold"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}


def for_problem(config: TuningConfig, spec: ProblemSpec) -> TuningConfig:
    """``config`` with the problem's families and metric filled in, checked against its task.

    Raises:
        ValueError: A family or metric that is not the task's, or a metric needing a
            decision threshold (tuning ranks by threshold-free metrics).
    """
    families = tuple(config.families or spec.families or ())
    for family in families:
        check_family(family, spec.task)
    name = config.metric or str(spec.primary_metric)
    chosen_metric = METRICS.get(name)
    if (
        chosen_metric is None
        or spec.task not in chosen_metric.tasks
        or chosen_metric.needs_threshold
    ):
        raise ValueError(f"tuning metric {name!r} cannot rank {spec.task} models")
    return dataclasses.replace(config, families=families, metric=name)


def _fold_scores(
    frame: pd.DataFrame,
    spec: ProblemSpec,
    folds: list[Fold],
    family: str,
    params: dict[str, Any],
    n_threads: int,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per fold, in order: the validation indices and the model's output on them."""
    x, y = xy(frame, spec)
    build = lambda: build_pipeline(family, params, spec, n_threads)  # noqa: E731
    for train_idx, valid_idx in folds:
        yield valid_idx, fit_predict(x, y, train_idx, valid_idx, build, output_of(spec))


def tune(train: pd.DataFrame, spec: ProblemSpec, config: TuningConfig) -> TuningResult:
    """Search family and hyperparameters by mean score over purged time folds.

    Args:
        train: Labelled training rows; the holdout must already be removed.
        spec: The problem: columns, task, families and primary metric.
        config: Budget, seed, folds, families, metric, threads, rungs and where to
            store the study.

    Returns:
        The chosen trial's family, parameters and scores, and the trial history.

    Raises:
        ValueError: Bad frame, too few time values, a fold whose label does not vary,
            a family or metric not of the task, or a stored study of the same name
            from another run.
    """
    started = time.perf_counter()
    config = for_problem(config, spec)
    metric = METRICS[str(config.metric)]
    deadline = Deadline.after(config.timeout_s)
    objective, fractions = build_objective(train, spec, config, deadline)
    study = open_study(config, fingerprint(train, spec, config))
    finished = [t for t in study.trials if t.state.is_finished()]
    remaining = config.n_trials - len(finished)
    if remaining > 0 and config.n_workers > 1:
        fan_out(train, spec, config, remaining, deadline.remaining())
    elif remaining > 0:
        # Optuna checks its timeout only between trials; the objective honours it within.
        timeout = None if config.timeout_s is None else max(deadline.remaining(), 1e-3)
        with threadpool_limits(config.n_threads):
            study.optimize(objective, n_trials=remaining, timeout=timeout)
    best = chosen(study)
    states = [t.state for t in study.trials]
    return TuningResult(
        family=best.params["family"],
        params=best.user_attrs["params"],
        cv_score=float(best.user_attrs["cv_score"]),
        fold_scores=best.user_attrs["fold_scores"],
        metric=metric.name,
        n_trials_completed=states.count(TrialState.COMPLETE),
        n_pruned=states.count(TrialState.PRUNED),
        duration_s=time.perf_counter() - started,
        trial_history=history(study),
        study_name=config.study_name,
        storage_url=config.storage_url,
        sample_fraction=float(best.user_attrs["sample_fraction"]),
        rung_fractions=fractions,
        n_threads=config.n_threads,
        study=study,
        out_of_fold=objective.best_out_of_fold if objective.best_trial == best.number else None,
    )


def out_of_fold_scores(
    train: pd.DataFrame,
    spec: ProblemSpec,
    config: TuningConfig,
    family: str,
    params: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray]:
    """Validation-fold labels and scores for one configuration, e.g. to pick a threshold.

    Uses the same folds as ``tune``, so the threshold never sees the holdout.

    Args:
        train: The rows ``tune`` was given.
        spec: The problem.
        config: The tuning config (its folds are reused).
        family: Model family.
        params: Estimator parameters.

    Returns:
        ``(y_true, scores)`` over every validation row, fold by fold.
    """
    check_frame(train, spec)
    y = labels_of(train, spec)
    folds = checked_folds(train, spec, config)
    with threadpool_limits(config.n_threads):
        parts = list(_fold_scores(train, spec, folds, family, params, config.n_threads))
    return (
        np.concatenate([y[idx] for idx, _ in parts]),
        np.concatenate([predicted for _, predicted in parts]),
    )


def fit_final(
    train: pd.DataFrame,
    spec: ProblemSpec,
    family: str,
    params: dict[str, Any],
    n_threads: int = 1,
) -> Pipeline:
    """Refit the chosen configuration on every training row.

    Args:
        train: Labelled training rows.
        spec: The problem.
        family: Model family.
        params: Estimator parameters.
        n_threads: Cap on OpenMP/BLAS threads while fitting, and the forest's ``n_jobs``.

    Returns:
        The fitted pipeline; it takes ``frame[list(spec.features)]``.
    """
    check_frame(train, spec)
    x, y = xy(train, spec)
    with threadpool_limits(n_threads):
        return build_pipeline(family, params, spec, n_threads).fit(x, y)


def optimization_history_html(study: optuna.Study) -> str:
    """The trial history plot as one self-contained HTML page (plotly.js inlined, no CDN).

    Args:
        study: A study with at least one completed trial.

    Returns:
        A full HTML document that renders offline.
    """
    figure = optuna.visualization.plot_optimization_history(study)
    return figure.to_html(include_plotlyjs=True, full_html=True)
