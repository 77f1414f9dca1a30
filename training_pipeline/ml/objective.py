"""The tuning objective for one search: folds, rungs and search space, built the same way
by a single process and by each worker process of a fanned-out search (``tuning_workers``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
import pandas as pd
from sklearn.pipeline import Pipeline

from training_pipeline.ml.halving import (
    Deadline,
    HalvingObjective,
    rung_fractions,
    sample_order,
)
from training_pipeline.ml.metrics import METRICS, compute
from training_pipeline.ml.pipelines import build_pipeline, suggest_params
from training_pipeline.ml.problem import ProblemSpec
from training_pipeline.ml.splits import Fold, check_frame, cv_folds, labels_of
from training_pipeline.ml.studies import refuse_repeat

if TYPE_CHECKING:
    from training_pipeline.ml.tuning import TuningConfig


def xy(frame: pd.DataFrame, spec: ProblemSpec) -> tuple[pd.DataFrame, np.ndarray]:
    return frame[list(spec.features)], labels_of(frame, spec)


def output_of(spec: ProblemSpec) -> Callable[[Any, pd.DataFrame], np.ndarray]:
    return spec.task_adapter.output


def checked_folds(frame: pd.DataFrame, spec: ProblemSpec, config: TuningConfig) -> list[Fold]:
    """Folds whose training and validation labels both vary (both classes, or values)."""
    folds = cv_folds(frame, spec, config.n_folds, config.valid_snapshots, config.seed)
    y = labels_of(frame, spec)
    for number, (train_idx, valid_idx) in enumerate(folds, start=1):
        for part, idx in (("training", train_idx), ("validation", valid_idx)):
            spec.task_adapter.check_variation(y[idx], spec.label, f"fold {number} {part} rows:")
    return folds


def build_objective(
    train: pd.DataFrame,
    spec: ProblemSpec,
    config: TuningConfig,
    deadline: Deadline,
    refuse_repeats: bool = False,
) -> tuple[HalvingObjective, tuple[float, ...]]:
    """The objective over ``config``'s families and folds, and its rungs' sample shares.

    ``refuse_repeats``: a trial whose parameters an earlier trial of the study already
    drew is pruned before it fits anything (``studies.refuse_repeat``); worker processes
    sample independently, so without it two of them may evaluate the same configuration.
    ``config`` must have its families and metric filled in (``tuning.for_problem``).
    """
    metric = METRICS[str(config.metric)]
    check_frame(train, spec)
    folds = checked_folds(train, spec, config)
    smallest_fold = min(len(train_idx) for train_idx, _ in folds)
    fractions = rung_fractions(
        smallest_fold, config.reduction_factor, config.min_rung_rows, config.max_rungs
    )
    order = sample_order(train, spec, config.seed)
    x, y = xy(train, spec)

    def score(y_true: np.ndarray, output: np.ndarray) -> float:
        return compute(metric.name, y_true, output)

    def propose(trial: optuna.Trial) -> Callable[[], Pipeline]:
        family = trial.suggest_categorical("family", list(config.families or ()))
        params = suggest_params(trial, family, len(train))
        trial.set_user_attr("params", params)
        if refuse_repeats:
            refuse_repeat(trial)
        return lambda: build_pipeline(family, params, spec, config.n_threads)

    objective = HalvingObjective(
        x,
        y,
        folds,
        fractions,
        order,
        config.reduction_factor,
        score,
        propose,
        deadline,
        output_of(spec),
        metric.greater_is_better,
    )
    return objective, fractions
