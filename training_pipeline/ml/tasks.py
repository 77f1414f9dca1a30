"""What differs between prediction tasks, behind one small interface.

Training, evaluation, scoring and the smoke test ask the task how to read the label,
what the model's output is (the positive class's probability, or the predicted value),
which model families and metrics fit, and whether a decision threshold exists at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from training_pipeline.ml.metrics import BINARY, REGRESSION

if TYPE_CHECKING:  # pandas loads when labels are read, not when a spec is validated
    import pandas as pd

_BINARY_VALUES = {0, 1}


@dataclass(frozen=True)
class Task:
    name: str
    families: tuple[str, ...]  # the defaults, first is the cheapest to reason about
    primary_metric: str
    report_metrics: tuple[str, ...]
    has_threshold: bool  # binary: a cut-off turns probabilities into decisions
    is_classification: bool

    def labels(self, values: pd.Series, column: str) -> np.ndarray:
        """The label column as model targets: 0/1 integers, or floats.

        Raises:
            ValueError: Naming ``column`` when values do not fit the task.
        """
        import pandas as pd

        if self.is_classification:
            distinct = set(pd.unique(values).tolist())  # True == 1, 1.0 == 1
            if not distinct <= _BINARY_VALUES:
                shown = sorted(map(str, distinct))[:5]
                raise ValueError(
                    f"label {column!r} must be 0/1 or boolean for a binary task, got {shown}"
                )
            return values.astype(int).to_numpy()
        try:
            numbers = pd.to_numeric(values, errors="raise").astype("float64").to_numpy()
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"label {column!r} must be numeric for a regression task: {error}"
            ) from error
        if not np.isfinite(numbers).all():
            raise ValueError(f"label {column!r} has non-finite values")
        return numbers

    def check_variation(self, y: np.ndarray, column: str, where: str = "") -> None:
        """Refuse labels a model cannot learn from: one class, or one value."""
        place = f"{where} " if where else ""
        if self.is_classification and len(np.unique(y)) < 2:
            raise ValueError(
                f"{place}label {column!r} has a single class {sorted(np.unique(y).tolist())}; "
                "need both 0 and 1"
            )
        if not self.is_classification and (len(y) < 2 or np.ptp(y) == 0):
            raise ValueError(f"{place}label {column!r} is constant; nothing to learn")

    def output(self, model: Any, x: pd.DataFrame) -> np.ndarray:
        """What a fitted model says about ``x``: one float per row."""
        if self.is_classification:
            return np.asarray(model.predict_proba(x)[:, 1], dtype=float)
        return np.asarray(model.predict(x), dtype=float)

    def label_summary(self, y: np.ndarray) -> dict[str, float]:
        """A line of context for reports: the positive rate, or the label's spread."""
        if self.is_classification:
            return {"positive_rate": float(np.mean(y))}
        return {"label_mean": float(np.mean(y)), "label_std": float(np.std(y))}


TASKS: dict[str, Task] = {
    BINARY: Task(
        name=BINARY,
        families=("hist_gradient_boosting", "logistic_regression", "random_forest"),
        primary_metric="roc_auc",
        report_metrics=("roc_auc", "pr_auc", "log_loss", "brier", "f1"),
        has_threshold=True,
        is_classification=True,
    ),
    REGRESSION: Task(
        name=REGRESSION,
        families=("hist_gradient_boosting", "ridge", "random_forest"),
        primary_metric="rmse",
        report_metrics=("rmse", "mae", "r2"),
        has_threshold=False,
        is_classification=False,
    ),
}


def task_of(name: str, field: str = "task") -> Task:
    """The task ``name``, or a ValueError naming ``field`` and the tasks allowed."""
    if name not in TASKS:
        raise ValueError(f"{field}: {name!r} is not a task; allowed: {', '.join(TASKS)}")
    return TASKS[name]
