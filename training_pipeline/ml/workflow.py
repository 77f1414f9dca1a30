"""The steps from a training set to a gated decision, as plain functions.

Dagster assets call these in order; nothing here knows about Dagster, so the whole path
can be tested on a DataFrame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from training_pipeline.ml.comparison import paired_bootstrap
from training_pipeline.ml.datasets import TrainingSet, load_training_set
from training_pipeline.ml.evaluation import (
    GateDecision,
    GatePolicy,
    Metrics,
    choose_threshold,
    evaluate,
    gate,
)
from training_pipeline.ml.problem import ProblemSpec
from training_pipeline.ml.splits import holdout_split, labels_of
from training_pipeline.ml.tuning import (
    TuningConfig,
    TuningResult,
    fit_final,
    out_of_fold_scores,
    tune,
)


@dataclass(frozen=True)
class TrainedCandidate:
    model: Any
    tuning: TuningResult
    threshold: float | None  # binary only
    metrics: Metrics  # on the holdout
    train_rows: int
    holdout_rows: int


def train_candidate(
    frame: pd.DataFrame,
    spec: ProblemSpec,
    config: TuningConfig,
    holdout_periods: int | None = None,
) -> TrainedCandidate:
    """Tune on everything but the holdout, refit, and score the holdout once.

    ``holdout_periods`` overrides ``spec.holdout.last_periods``.  For a binary task the
    decision threshold comes from out-of-fold predictions of the chosen configuration,
    so the holdout stays unseen until its single evaluation; tuning usually kept them
    from the winning trial, else the folds are refitted for them.
    """
    train, holdout = holdout_split(frame, spec, holdout_periods)
    tuning = tune(train, spec, config)
    threshold = None
    if spec.task_adapter.has_threshold:
        out_of_fold = tuning.out_of_fold or out_of_fold_scores(
            train, spec, config, tuning.family, tuning.params
        )
        threshold = choose_threshold(*out_of_fold)
    model = fit_final(train, spec, tuning.family, tuning.params, n_threads=config.n_threads)
    metrics = evaluate(model, holdout, spec, threshold)
    return TrainedCandidate(model, tuning, threshold, metrics, len(train), len(holdout))


@dataclass(frozen=True)
class Comparison:
    challenger: Metrics
    champion: Metrics | None
    decision: GateDecision
    challenger_scores: np.ndarray
    champion_scores: np.ndarray | None


def holdout_of(
    dataset: TrainingSet, spec: ProblemSpec, holdout_periods: int | None = None
) -> pd.DataFrame:
    """The candidate's holdout again, from the immutable export it was split from."""
    _, holdout = holdout_split(load_training_set(dataset), spec, holdout_periods)
    return holdout


def holdout_metrics(stored: dict[str, Any]) -> Metrics:
    """A version's holdout metrics from its registry entry, which may hold extra keys
    (such as the CV score) beside them."""
    return Metrics.from_dict(stored)


def stored_threshold(stored: dict[str, Any]) -> float | None:
    """A version's decision threshold from its registry metrics (None: not a binary task)."""
    value = stored.get("threshold")
    return None if value is None else float(value)


def scores_of(model: Any, frame: pd.DataFrame, spec: ProblemSpec) -> np.ndarray:
    """The task's model output for every row: probability of the positive class, or value."""
    return spec.task_adapter.output(model, frame[list(spec.features)])


def compare(
    challenger: Any,
    challenger_threshold: float | None,
    champion: Any | None,
    champion_threshold: float | None,
    holdout: pd.DataFrame,
    spec: ProblemSpec,
    policy: GatePolicy | None = None,
    replacement: str | None = None,
) -> Comparison:
    """Score challenger and champion on the same holdout rows, bootstrap the difference
    of the gate metric on those rows, and apply the gate (``policy``, else the spec's).

    ``replacement`` is why an equally good challenger may still replace the champion
    (``comparison.replacement_reason``), None when nothing does."""
    policy = spec.gate if policy is None else policy
    challenger_metrics = evaluate(challenger, holdout, spec, challenger_threshold)
    challenger_scores = scores_of(challenger, holdout, spec)
    champion_metrics = champion_scores = interval = None
    if champion is not None:
        if spec.task_adapter.has_threshold and champion_threshold is None:
            raise ValueError("the champion's decision threshold is unknown")
        champion_metrics = evaluate(champion, holdout, spec, champion_threshold)
        champion_scores = scores_of(champion, holdout, spec)
        interval = paired_bootstrap(
            policy.metric,
            labels_of(holdout, spec),
            challenger_scores,
            champion_scores,
            challenger_threshold=challenger_threshold,
            champion_threshold=champion_threshold,
            resamples=policy.resamples,
            confidence=policy.confidence,
        )
    return Comparison(
        challenger_metrics,
        champion_metrics,
        gate(challenger_metrics, champion_metrics, policy, interval, replacement),
        challenger_scores,
        champion_scores,
    )
