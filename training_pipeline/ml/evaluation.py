"""Holdout metrics, the decision threshold, and the gate a challenger must pass.

Metrics are plain floats, ints, strings and lists so they can be stored in the model
registry and shown as Dagster metadata as they are.  The threshold is chosen on
out-of-fold predictions, never on the holdout, so the holdout F1 is an honest estimate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
)

from training_pipeline.ml.feature_spec import FeatureSpec
from training_pipeline.ml.splits import check_frame

CALIBRATION_BINS = 10


class Classifier(Protocol):
    def predict_proba(self, x: pd.DataFrame) -> np.ndarray: ...


@dataclass(frozen=True)
class CalibrationBin:
    """One equal-count bin of rows ranked by score: is a 0.3 really a 30% churn rate?"""

    n_rows: int
    mean_predicted: float
    observed_rate: float


@dataclass(frozen=True)
class SliceMetrics:
    """How the model does for one value of one categorical feature (null as "missing")."""

    column: str
    value: str
    n_rows: int
    positive_rate: float
    roc_auc: float | None  # None when the slice holds a single class


@dataclass(frozen=True)
class Metrics:
    roc_auc: float
    pr_auc: float
    log_loss: float
    brier: float
    f1: float
    precision: float
    recall: float
    threshold: float
    n_rows: int
    positive_rate: float
    calibration: list[CalibrationBin] = field(default_factory=list)
    slices: list[SliceMetrics] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Scalars at the top level, calibration and slices as lists of dicts."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metrics:
        """Rebuild metrics stored by ``to_dict``, e.g. the champion's from the registry."""
        return cls(
            **{k: v for k, v in data.items() if k not in ("calibration", "slices")},
            calibration=[CalibrationBin(**b) for b in data.get("calibration", [])],
            slices=[SliceMetrics(**s) for s in data.get("slices", [])],
        )


def _check_scores(y_true: np.ndarray, scores: np.ndarray) -> None:
    if len(y_true) != len(scores):
        raise ValueError(f"{len(y_true)} labels but {len(scores)} scores")
    if len(np.unique(y_true)) < 2:
        raise ValueError("labels have a single class; metrics and thresholds need both 0 and 1")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinite values")


def choose_threshold(y_true: np.ndarray, scores: np.ndarray) -> float:
    """The score cut-off (predict churn when ``score >= threshold``) that maximises F1.

    Use out-of-fold predictions, not the holdout.  Among equally good cut-offs the
    highest wins: the same F1 with fewer customers flagged.

    Args:
        y_true: 0/1 labels.
        scores: Predicted probabilities of churn.

    Returns:
        The threshold, one of the observed scores.

    Raises:
        ValueError: Mismatched lengths, a single class, or non-finite scores.
    """
    y_true, scores = np.asarray(y_true).astype(int), np.asarray(scores, dtype=float)
    _check_scores(y_true, scores)
    precision, recall, thresholds = precision_recall_curve(y_true, scores)
    precision, recall = precision[:-1], recall[:-1]
    denominator = precision + recall
    f1 = np.divide(
        2 * precision * recall, denominator, out=np.zeros_like(denominator), where=denominator > 0
    )
    best = np.flatnonzero(np.isclose(f1, f1.max(), rtol=0, atol=1e-12))[-1]
    return float(thresholds[best])


def calibration_table(
    y_true: np.ndarray, scores: np.ndarray, n_bins: int = CALIBRATION_BINS
) -> list[CalibrationBin]:
    """Mean predicted vs observed churn rate in equal-count bins of ascending score.

    Ties are split by position (a stable sort), so the bins are the same every run.

    Args:
        y_true: 0/1 labels.
        scores: Predicted probabilities.
        n_bins: Number of bins (fewer when there are fewer rows).

    Returns:
        One ``CalibrationBin`` per bin, lowest scores first.
    """
    order = np.argsort(scores, kind="stable")
    bins = np.array_split(order, min(n_bins, len(order)))
    return [
        CalibrationBin(len(b), float(np.mean(scores[b])), float(np.mean(y_true[b]))) for b in bins
    ]


def slice_metrics(
    frame: pd.DataFrame, spec: FeatureSpec, y_true: np.ndarray, scores: np.ndarray
) -> list[SliceMetrics]:
    """Per-value metrics for every categorical feature, so a weak country shows up.

    Args:
        frame: The evaluated rows (for their categorical columns).
        spec: The feature spec.
        y_true: 0/1 labels aligned with ``frame``.
        scores: Predicted probabilities aligned with ``frame``.

    Returns:
        One ``SliceMetrics`` per (column, value), values sorted.
    """
    result = []
    for column in spec.categorical:
        values = frame[column].astype(object).where(frame[column].notna(), "missing")
        values = values.astype(str).to_numpy()
        for value in sorted(set(values)):
            mask = values == value
            y, s = y_true[mask], scores[mask]
            auc = float(roc_auc_score(y, s)) if len(np.unique(y)) == 2 else None
            result.append(SliceMetrics(column, value, int(mask.sum()), float(y.mean()), auc))
    return result


def evaluate(
    model: Classifier, frame: pd.DataFrame, spec: FeatureSpec, threshold: float
) -> Metrics:
    """Score ``frame`` with ``model`` and measure ranking, calibration, F1 and slices.

    Args:
        model: A fitted classifier taking ``frame[list(spec.features)]``.
        frame: Labelled rows, typically the holdout.
        spec: The feature spec.
        threshold: Decision threshold, chosen beforehand on out-of-fold predictions.

    Returns:
        The metrics.

    Raises:
        ValueError: A missing column or a single-class label.
    """
    check_frame(frame, spec)
    y_true = frame[spec.label].astype(int).to_numpy()
    scores = np.asarray(model.predict_proba(frame[list(spec.features)])[:, 1], dtype=float)
    _check_scores(y_true, scores)
    predicted = (scores >= threshold).astype(int)
    true_positives = int((predicted & y_true).sum())
    return Metrics(
        roc_auc=float(roc_auc_score(y_true, scores)),
        pr_auc=float(average_precision_score(y_true, scores)),
        log_loss=float(log_loss(y_true, scores, labels=[0, 1])),
        brier=float(brier_score_loss(y_true, scores)),
        f1=float(f1_score(y_true, predicted, zero_division=0.0)),
        precision=true_positives / max(int(predicted.sum()), 1),
        recall=true_positives / int(y_true.sum()),
        threshold=float(threshold),
        n_rows=len(y_true),
        positive_rate=float(y_true.mean()),
        calibration=calibration_table(y_true, scores),
        slices=slice_metrics(frame, spec, y_true, scores),
    )


@dataclass(frozen=True)
class GatePolicy:
    """A challenger needs AUC of at least ``auc_floor`` and at most ``max_auc_drop`` below
    the champion's.  The small tolerance keeps noise from blocking a fresh retrain."""

    auc_floor: float = 0.65
    max_auc_drop: float = 0.01

    def __post_init__(self) -> None:
        if not 0.0 <= self.auc_floor <= 1.0:
            raise ValueError(f"auc_floor must be within [0, 1], got {self.auc_floor}")
        if self.max_auc_drop < 0.0:
            raise ValueError(f"max_auc_drop must not be negative, got {self.max_auc_drop}")


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    reasons: list[str]
    challenger_auc: float
    champion_auc: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gate(challenger: Metrics, champion: Metrics | None, policy: GatePolicy) -> GateDecision:
    """Decide whether the challenger may replace the champion.

    Compare metrics measured on the same holdout, or the comparison means little.

    Args:
        challenger: The new model's metrics.
        champion: The current production model's metrics, or None if there is none.
        policy: Floor and tolerance.

    Returns:
        The decision, with one reason per check, pass or fail.
    """
    auc = challenger.roc_auc
    floor_ok = auc >= policy.auc_floor
    reasons = [
        f"challenger AUC {auc:.4f} {'meets' if floor_ok else 'is below'} the floor "
        f"{policy.auc_floor:.4f}"
    ]
    champion_ok = True
    if champion is None:
        reasons.append("no champion to compare against")
    else:
        bar = champion.roc_auc - policy.max_auc_drop
        champion_ok = auc >= bar
        reasons.append(
            f"challenger AUC {auc:.4f} is {'at least' if champion_ok else 'below'} {bar:.4f}: "
            f"the champion's {champion.roc_auc:.4f} minus the allowed drop "
            f"{policy.max_auc_drop:.4f}"
        )
    return GateDecision(
        passed=floor_ok and champion_ok,
        reasons=reasons,
        challenger_auc=auc,
        champion_auc=None if champion is None else champion.roc_auc,
    )
