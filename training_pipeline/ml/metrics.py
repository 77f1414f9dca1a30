"""Every metric the pipeline can tune on, report or gate on, in one registry.

A metric knows its direction (so a gate and a study know whether higher is better),
whether it reads probabilities or a decision at a threshold, and which tasks it belongs
to, so a spec asking for ``rmse`` on a binary problem is refused by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

BINARY, REGRESSION = "binary", "regression"
TASK_NAMES = (BINARY, REGRESSION)


@dataclass(frozen=True)
class Metric:
    """One metric: ``compute(y_true, output, threshold)``.

    ``output`` is the task's model output (positive-class probability, predicted value);
    ``threshold`` is the binary decision cut-off, read only by metrics that
    ``needs_threshold``.
    """

    name: str
    label: str  # for people: tables, reports, model cards
    greater_is_better: bool
    needs_probabilities: bool
    needs_threshold: bool
    tasks: frozenset[str]
    compute: Callable[[np.ndarray, np.ndarray, float | None], float]
    needs_two_labels: bool = False  # undefined when every label is the same (AUC, R²)

    def defined_for(self, y_true: np.ndarray) -> bool:
        """Whether the metric has a value on these labels (a slice may hold one class)."""
        if len(y_true) == 0:
            return False
        return not self.needs_two_labels or len(np.unique(y_true)) >= 2


def _f1(y: np.ndarray, p: np.ndarray, threshold: float | None) -> float:
    from sklearn.metrics import f1_score

    if threshold is None:
        raise ValueError("f1 needs a decision threshold")
    return float(f1_score(y, (p >= threshold).astype(int), zero_division=0.0))


def _rmse(y: np.ndarray, p: np.ndarray, _: float | None) -> float:
    return float(np.sqrt(np.mean((np.asarray(y, float) - np.asarray(p, float)) ** 2)))


def _log_loss(y: np.ndarray, p: np.ndarray, _: float | None) -> float:
    from sklearn.metrics import log_loss

    return float(log_loss(y, p, labels=[0, 1]))


def _sklearn(name: str) -> Callable[..., float]:
    """``sklearn.metrics.<name>(y, p)``, imported when first computed: the registry is
    read wherever a spec is validated (loading the definitions), where scikit-learn's
    import (about 1.5 s of CPU) buys nothing."""

    def compute(y: np.ndarray, p: np.ndarray, _: float | None) -> float:
        import sklearn.metrics

        return float(getattr(sklearn.metrics, name)(y, p))

    return compute


_BIN = frozenset({BINARY})
_REG = frozenset({REGRESSION})
# name, label, greater_is_better, needs_probabilities, needs_threshold, tasks, compute,
# needs_two_labels
_ALL = (
    Metric("roc_auc", "ROC AUC", True, True, False, _BIN, _sklearn("roc_auc_score"), True),
    Metric("pr_auc", "PR AUC", True, True, False, _BIN, _sklearn("average_precision_score"), True),
    Metric("log_loss", "log loss", False, True, False, _BIN, _log_loss),
    Metric("brier", "Brier score", False, True, False, _BIN, _sklearn("brier_score_loss")),
    Metric("f1", "F1 at threshold", True, False, True, _BIN, _f1),
    Metric("rmse", "RMSE", False, False, False, _REG, _rmse),
    Metric("mae", "MAE", False, False, False, _REG, _sklearn("mean_absolute_error")),
    Metric("r2", "R²", True, False, False, _REG, _sklearn("r2_score"), True),
)
METRICS: dict[str, Metric] = {m.name: m for m in _ALL}


def metrics_for(task: str) -> tuple[str, ...]:
    """The names of ``task``'s metrics, in registry order."""
    return tuple(m.name for m in _ALL if task in m.tasks)


def rankable_metrics_for(task: str) -> tuple[str, ...]:
    """``task``'s metrics that need no decision threshold: the ones tuning can optimise."""
    return tuple(m.name for m in _ALL if task in m.tasks and not m.needs_threshold)


def metric(name: str, task: str | None = None, field: str = "metric") -> Metric:
    """The registered metric ``name``, checked to belong to ``task`` when given.

    Raises:
        ValueError: Naming ``field``, the value and the metrics allowed.
    """
    allowed = metrics_for(task) if task is not None else tuple(METRICS)
    if name not in allowed:
        scope = f"{task} " if task is not None else ""
        raise ValueError(f"{field}: {name!r} is not a {scope}metric; allowed: {', '.join(allowed)}")
    return METRICS[name]


def compute(
    name: str, y_true: np.ndarray, output: np.ndarray, threshold: float | None = None
) -> float:
    """The value of metric ``name`` on labels and model output."""
    return float(METRICS[name].compute(y_true, output, threshold))
