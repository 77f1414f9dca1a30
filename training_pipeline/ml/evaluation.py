"""Holdout metrics, the decision threshold, and the gate a challenger must pass.

Metrics are plain floats, ints, strings and lists so they can be stored in the model
registry and shown as Dagster metadata as they are.  For a binary task the threshold is
chosen on out-of-fold predictions, never on the holdout, so the holdout F1 is an honest
estimate; other tasks have no threshold.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve

from training_pipeline.ml.comparison import BETTER, DifferenceInterval
from training_pipeline.ml.metrics import METRICS, compute, metric
from training_pipeline.ml.problem import GatePolicy, ProblemSpec
from training_pipeline.ml.splits import check_frame, labels_of

__all__ = [
    "CalibrationBin",
    "GateDecision",
    "GatePolicy",
    "Metrics",
    "SliceMetrics",
    "calibration_table",
    "choose_threshold",
    "evaluate",
    "gate",
    "slice_metrics",
]

CALIBRATION_BINS = 10


@dataclass(frozen=True)
class CalibrationBin:
    """One equal-count bin of rows ranked by output: mean output against mean label."""

    n_rows: int
    mean_predicted: float
    observed_mean: float


@dataclass(frozen=True)
class SliceMetrics:
    """How the model does for one value of one categorical feature (null as "missing")."""

    column: str
    value: str
    n_rows: int
    label_mean: float  # the positive rate for a binary task
    metric: str
    score: float | None  # None where the metric is undefined (e.g. a single class)


@dataclass(frozen=True)
class Metrics:
    task: str
    values: dict[str, float]  # registry metric name -> value
    n_rows: int
    label_mean: float
    threshold: float | None = None
    precision: float | None = None
    recall: float | None = None
    calibration: list[CalibrationBin] = field(default_factory=list)
    slices: list[SliceMetrics] = field(default_factory=list)

    def __getitem__(self, name: str) -> float:
        if name not in self.values:
            raise KeyError(f"metric {name!r} was not measured; measured: {sorted(self.values)}")
        return self.values[name]

    def to_dict(self) -> dict[str, Any]:
        """Metric values at the top level beside the rest; calibration and slices as lists."""
        data = asdict(self)
        return data.pop("values") | data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metrics:
        """Rebuild metrics stored by ``to_dict``, e.g. the champion's from the registry."""
        return cls(
            task=data["task"],
            values={k: v for k, v in data.items() if k in METRICS},
            n_rows=data["n_rows"],
            label_mean=data["label_mean"],
            threshold=data.get("threshold"),
            precision=data.get("precision"),
            recall=data.get("recall"),
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
    """The cut-off (predict positive when ``score >= threshold``) that maximises F1.

    Use out-of-fold predictions, not the holdout.  Among equally good cut-offs the
    highest wins: the same F1 with fewer rows flagged.

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
    """Mean output vs mean observed label in equal-count bins of ascending output.

    Ties are split by position (a stable sort), so the bins are the same every run.
    """
    order = np.argsort(scores, kind="stable")
    bins = np.array_split(order, min(n_bins, len(order)))
    return [
        CalibrationBin(len(b), float(np.mean(scores[b])), float(np.mean(y_true[b]))) for b in bins
    ]


def slice_metrics(
    frame: pd.DataFrame,
    spec: ProblemSpec,
    y_true: np.ndarray,
    scores: np.ndarray,
    threshold: float | None = None,
) -> list[SliceMetrics]:
    """The primary metric per value of every categorical feature, so a weak country shows.

    Returns:
        One ``SliceMetrics`` per (column, value), values sorted.
    """
    primary = metric(str(spec.primary_metric))
    result = []
    for column in spec.categorical or ():
        values = frame[column].astype(object).where(frame[column].notna(), "missing")
        values = values.astype(str).to_numpy()
        for value in sorted(set(values)):
            mask = values == value
            y, s = y_true[mask], scores[mask]
            score = float(primary.compute(y, s, threshold)) if primary.defined_for(y) else None
            result.append(
                SliceMetrics(column, value, int(mask.sum()), float(y.mean()), primary.name, score)
            )
    return result


def measured_metrics(spec: ProblemSpec) -> tuple[str, ...]:
    """The reported metrics, plus the primary and gate metrics if not among them."""
    names = (*(spec.report_metrics or ()), str(spec.primary_metric), spec.gate.metric)
    return tuple(dict.fromkeys(names))


def evaluate(
    model: Any, frame: pd.DataFrame, spec: ProblemSpec, threshold: float | None
) -> Metrics:
    """Score ``frame`` with ``model`` and measure the problem's metrics, calibration, slices.

    Args:
        model: A fitted pipeline taking ``frame[list(spec.features)]``.
        frame: Labelled rows, typically the holdout.
        spec: The problem.
        threshold: Binary: the decision threshold chosen on out-of-fold predictions.
            Other tasks: None.

    Raises:
        ValueError: A missing column, a label that does not vary, non-finite output, or
            a threshold given (or missing) against the task.
    """
    task = spec.task_adapter
    if task.has_threshold != (threshold is not None):
        need = "needs a decision threshold" if task.has_threshold else "takes no threshold"
        raise ValueError(f"a {spec.task} task {need}")
    check_frame(frame, spec)
    y_true = labels_of(frame, spec)
    output = task.output(model, frame[list(spec.features)])
    if len(output) != len(y_true) or not np.isfinite(output).all():
        raise ValueError("the model's output has NaN or infinite values, or the wrong length")
    values = {name: compute(name, y_true, output, threshold) for name in measured_metrics(spec)}
    precision = recall = None
    if threshold is not None:
        predicted = (output >= threshold).astype(int)
        true_positives = int((predicted & y_true).sum())
        precision = true_positives / max(int(predicted.sum()), 1)
        recall = true_positives / max(int(y_true.sum()), 1)
    return Metrics(
        task=spec.task,
        values=values,
        n_rows=len(y_true),
        label_mean=float(np.mean(y_true)),
        threshold=None if threshold is None else float(threshold),
        precision=precision,
        recall=recall,
        calibration=calibration_table(y_true, output),
        slices=slice_metrics(frame, spec, y_true, output, threshold),
    )


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    reasons: list[str]
    metric: str
    challenger_value: float
    champion_value: float | None
    interval: DifferenceInterval | None = None  # with a champion: the paired comparison

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["interval"] = None if self.interval is None else self.interval.to_dict()
        return data


def gate(
    challenger: Metrics,
    champion: Metrics | None,
    policy: GatePolicy,
    interval: DifferenceInterval | None = None,
    replacement: str | None = None,
) -> GateDecision:
    """Decide whether the challenger may replace the champion.

    The challenger must reach the floor (higher is better) or stay under the ceiling
    (lower is better).  Against a champion, ``interval`` is the paired bootstrap of the
    difference on the same holdout rows: the challenger must be non-inferior (the worst
    end of the interval no more than ``policy.tolerance`` worse).  If it is not also
    better beyond noise it passes only with a ``replacement`` reason (new data, drift):
    a model that is merely as good is not swapped in for nothing.

    Returns:
        The decision, with one reason per check, pass or fail.

    Raises:
        ValueError: A champion without the interval, or an interval of another metric.
    """
    chosen = metric(policy.metric)
    name, value, up = chosen.label, challenger[policy.metric], chosen.greater_is_better
    bound_ok = value >= policy.bound if up else value <= policy.bound
    kind = "floor" if up else "ceiling"
    verdict = ("meets" if up else "is within") if bound_ok else ("is below" if up else "is above")
    reasons = [f"challenger {name} {value:.4f} {verdict} the {kind} {policy.bound:.4f}"]
    champion_ok = True
    champion_value = None
    if champion is None:
        reasons.append("no champion to compare against")
    else:
        if interval is None or interval.metric != policy.metric:
            raise ValueError(
                f"comparing with a champion needs the paired interval of {policy.metric}"
            )
        champion_value = champion[policy.metric]
        champion_ok, reason = _against_champion(interval, policy.tolerance, replacement)
        reasons.append(reason)
    return GateDecision(
        passed=bound_ok and champion_ok,
        reasons=reasons,
        metric=policy.metric,
        challenger_value=value,
        champion_value=champion_value,
        interval=interval,
    )


def _against_champion(
    interval: DifferenceInterval, margin: float, replacement: str | None
) -> tuple[bool, str]:
    shown = interval.text()
    if interval.improvement_low < -margin:
        return False, (
            f"{shown}; the challenger may be worse than the champion by more than the "
            f"margin {margin:.4f}"
        )
    if interval.verdict == BETTER:
        return True, f"{shown}; the challenger is better than the champion beyond noise"
    if replacement is None:
        return False, (
            f"{shown}; the challenger is no better than the champion and nothing justifies "
            "replacing it (same training set, no drift)"
        )
    return True, f"{shown}; no better than the champion, but promoted because {replacement}"
