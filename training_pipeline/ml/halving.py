"""Successive halving over the training sample size, and the deadline tuning works to.

A trial is first scored with each fold's model trained on a small subsample of that
fold's training rows; only the best ``1/eta`` of the trials seen at a rung go on to a
sample ``eta`` times larger, up to every row.  Most trials therefore cost a few small
fits, and only promising ones pay for fits on all rows.  Optuna's
``SuccessiveHalvingPruner`` makes the promotion decision: the rung's step (``eta**k``)
is the resource reported with ``trial.report``.

How a fold is subsampled keeps the expanding-window CV honest:
  * validation rows are never subsampled, so every rung scores on the same rows;
  * rows are drawn per stratum of (time value, class) in the same proportion, so each
    time value keeps its share of the fold and its own class balance: the fold still
    trains only on the past, just more sparsely, and a rare class is not lost (without
    a time column, or for regression, the stratum is just what remains of the two);
  * the draw is a fixed, seeded order per row, so every trial at a rung sees the same
    rows (rungs compare like with like) and each rung's sample contains the smaller ones.

A stratum is a whole time value, which lies either entirely inside or entirely
outside a fold's training window, so ranking once over the whole frame gives exactly
the per-fold draw.

The time budget binds inside a trial: a scikit-learn fit cannot be interrupted (gradient
boosting has no time limit), so before every fit the objective predicts its length from
the trial's earlier fits and prunes the trial if it would end past the deadline.  The
overrun is then at most one mispredicted fit, plus the first rung of the first trial,
which always runs so that there is a model to choose.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd

from training_pipeline.ml.problem import ProblemSpec
from training_pipeline.ml.splits import Fold, snapshot_dates

_log = logging.getLogger(__name__)
# The clock for the deadline and for timing fits (a test may replace it).
_now: Callable[[], float] = time.monotonic


def default_threads() -> int:
    """The cores this process may run on (its CPU affinity), else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def rung_fractions(
    n_rows: int, reduction_factor: int, min_rung_rows: int, max_rungs: int
) -> tuple[float, ...]:
    """The share of a fold's training rows used at each rung, smallest first, ending at 1.

    There are ``K = min(max_rungs, floor(log_eta(n_rows / min_rung_rows)))`` rungs below
    the full sample, so the smallest sample keeps at least ``min_rung_rows`` rows.  With
    little data ``K`` is 0: one rung on every row, and nothing is pruned.

    Args:
        n_rows: Training rows of the smallest fold.
        reduction_factor: ``eta``: each rung has ``eta`` times the rows of the one before.
        min_rung_rows: Fewest rows the smallest rung may train on.
        max_rungs: Most rungs below the full sample.

    Returns:
        ``(eta**-K, ..., 1/eta, 1.0)``.
    """
    if reduction_factor < 2:
        raise ValueError(f"reduction_factor must be at least 2, got {reduction_factor}")
    if min_rung_rows < 1 or max_rungs < 0:
        raise ValueError(
            f"min_rung_rows must be at least 1 and max_rungs at least 0, got "
            f"{min_rung_rows} and {max_rungs}"
        )
    below = 0
    while below < max_rungs and n_rows >= min_rung_rows * reduction_factor ** (below + 1):
        below += 1
    return tuple(1.0 / reduction_factor ** (below - k) for k in range(below + 1))


def sample_order(frame: pd.DataFrame, spec: ProblemSpec, seed: int) -> np.ndarray:
    """Each row's place in a seeded shuffle of its (time value, class) stratum, in [0, 1).

    A row belongs to the sample of fraction ``f`` when its order is below ``f``: each
    stratum then keeps ``ceil(f * size)`` rows, at least one.
    """
    keys = np.random.default_rng(seed).random(len(frame))
    strata = pd.DataFrame({"key": keys, "all": np.zeros(len(frame))})
    if spec.time_column is not None:
        strata["time"] = snapshot_dates(frame, spec).to_numpy()
    if spec.task_adapter.is_classification:
        strata["label"] = frame[spec.label].to_numpy()
    by = [c for c in ("time", "label") if c in strata.columns] or ["all"]
    grouped = strata.groupby(by, sort=False)["key"]
    rank = grouped.rank(method="first").to_numpy()
    size = grouped.transform("size").to_numpy()
    return (rank - 1) / size


def subsample(train_idx: np.ndarray, order: np.ndarray, fraction: float) -> np.ndarray:
    """The fold training rows drawn at ``fraction`` (all of them at 1), in their order."""
    if fraction >= 1.0:
        return train_idx
    return train_idx[order[train_idx] < fraction]


@dataclass
class Deadline:
    """When tuning must be done, and whether a fit of a given estimated length still fits.

    ``at`` is a reading of the module clock ``_now``, or None for no time budget.
    """

    at: float | None

    @classmethod
    def after(cls, seconds: float | None) -> Deadline:
        return cls(None if seconds is None else _now() + seconds)

    def remaining(self) -> float:
        return math.inf if self.at is None else self.at - _now()

    def allows(self, estimated_s: float) -> bool:
        """True while ``estimated_s`` more seconds of work would end by the deadline."""
        return estimated_s <= self.remaining()


@dataclass
class FitCost:
    """Seconds per training row, measured on a trial's fits so far, to predict the next.

    Fit time grows about linearly with rows for these estimators, so a measured rate
    times the next fit's rows predicts it well enough to refuse a fit that would run past
    the deadline (scikit-learn estimators cannot be stopped mid-fit).  The larger of the
    overall and the latest rate is used: gradient boosting with early stopping runs
    more rounds on more rows, so the per-row cost can grow from rung to rung.
    """

    seconds: float = 0.0
    rows: int = 0
    last_rate: float = 0.0

    def add(self, rows: int, seconds: float) -> None:
        self.seconds += seconds
        self.rows += rows
        self.last_rate = seconds / max(rows, 1)

    def estimate(self, rows: int) -> float:
        """Predicted seconds for a fit on ``rows`` rows; 0 before any fit was measured."""
        if self.rows == 0:
            return 0.0
        return max(self.seconds / self.rows, self.last_rate) * rows


def fit_predict(
    x: pd.DataFrame,
    y: np.ndarray,
    fit_idx: np.ndarray,
    valid_idx: np.ndarray,
    build: Callable[[], Any],
    output: Callable[[Any, pd.DataFrame], np.ndarray],
) -> np.ndarray:
    """Fit a fresh model from ``build`` on ``fit_idx``; its ``output`` on ``valid_idx``."""
    model = build().fit(x.iloc[fit_idx], y[fit_idx])
    return output(model, x.iloc[valid_idx])


@dataclass
class HalvingObjective:
    """The Optuna objective: mean fold score, rung by rung, within the deadline.

    ``propose`` samples a trial's configuration and returns a builder of fresh models.
    The value reported at rung ``k`` (step ``reduction_factor**k``) is the mean score over
    folds of models trained on that rung's sample; the last rung's is the trial's value.
    The out-of-fold outputs of the best trial on every row are kept for the caller.
    ``output`` is the task's model output; ``greater_is_better`` the metric's direction.
    """

    x: pd.DataFrame
    y: np.ndarray
    folds: list[Fold]
    fractions: tuple[float, ...]
    order: np.ndarray
    reduction_factor: int
    score: Callable[[np.ndarray, np.ndarray], float]
    propose: Callable[[optuna.Trial], Callable[[], Any]]
    deadline: Deadline
    output: Callable[[Any, pd.DataFrame], np.ndarray]
    greater_is_better: bool = True
    # The first rung of the first trial always runs, so there is a model to choose;
    # the smallest sample keeps that unavoidable overrun short.
    rung_done: bool = False
    best_value: float | None = None
    best_trial: int | None = None
    best_out_of_fold: tuple[np.ndarray, np.ndarray] | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        build = self.propose(trial)
        cost = FitCost()
        for rung, fraction in enumerate(self.fractions):
            fold_scores, predictions = [], []
            for train_idx, valid_idx in self.folds:
                fit_idx = subsample(train_idx, self.order, fraction)
                self._check_time(trial, cost.estimate(len(fit_idx)), len(fit_idx))
                fit_started = _now()
                predictions.append(
                    fit_predict(self.x, self.y, fit_idx, valid_idx, build, self.output)
                )
                cost.add(len(fit_idx), _now() - fit_started)
                fold_scores.append(float(self.score(self.y[valid_idx], predictions[-1])))
            value = float(np.mean(fold_scores))
            self.rung_done = True
            trial.set_user_attr("fold_scores", fold_scores)
            trial.set_user_attr("sample_fraction", fraction)
            trial.set_user_attr("cv_score", value)
            trial.report(value, step=self.reduction_factor**rung)
            # After the full sample the work is done: score the trial rather than prune it.
            if rung < len(self.fractions) - 1 and trial.should_prune():
                raise _stop(trial, "halving")
        if self.best_value is None or (
            value > self.best_value if self.greater_is_better else value < self.best_value
        ):
            valid = np.concatenate([valid_idx for _, valid_idx in self.folds])
            self.best_value, self.best_trial = value, trial.number
            self.best_out_of_fold = (self.y[valid], np.concatenate(predictions))
        return value

    def _check_time(self, trial: optuna.Trial, estimate: float, rows: int) -> None:
        if self.rung_done and not self.deadline.allows(estimate):
            _log.info(
                "trial %d stopped: a fit on %d rows would take ~%.1f s, %.1f s are left",
                trial.number,
                rows,
                estimate,
                self.deadline.remaining(),
            )
            raise _stop(trial, "time budget")


def _stop(trial: optuna.Trial, reason: str) -> optuna.TrialPruned:
    trial.set_user_attr("stopped_by", reason)
    return optuna.TrialPruned(reason)
