"""The ``gate`` section of a model declaration: what a candidate must reach to replace
production, and how sure the comparison with the champion must be.

The champion comparison is a non-inferiority test on the paired bootstrap interval of
the metric difference (``ml/comparison.py``): the challenger passes when even the worst
end of the interval is no more than ``tolerance`` worse than the champion.  When it is
also not better beyond noise, it replaces the champion only if it was trained on new
data or because the features drifted.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, model_validator

from training_pipeline.ml.metrics import METRICS, metrics_for
from training_pipeline.spec.errors import FieldError

MIN_RESAMPLES, MAX_RESAMPLES = 100, 100_000


class Gate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str | None = None  # None: metrics.primary
    floor: float | None = None  # for a metric where higher is better
    ceiling: float | None = None  # for a metric where lower is better
    tolerance: float = 0.01  # the non-inferiority margin, in the metric's units
    confidence: float = 0.95  # coverage of the interval of the difference
    resamples: int = 1000  # paired bootstrap resamples

    @model_validator(mode="after")
    def _values(self) -> Gate:
        if self.tolerance < 0:
            raise FieldError("tolerance", f"{self.tolerance} is negative", "a number >= 0")
        if not 0.5 < self.confidence < 1:
            raise FieldError(
                "confidence", f"{self.confidence} is out of range", "a number between 0.5 and 1"
            )
        if not MIN_RESAMPLES <= self.resamples <= MAX_RESAMPLES:
            raise FieldError(
                "resamples",
                f"{self.resamples} is out of range",
                f"an integer from {MIN_RESAMPLES} to {MAX_RESAMPLES}",
            )
        return self


def check_gate(gate: Gate, metric: str, task: str) -> None:
    """The gate metric belongs to the task and the bound matches its direction."""
    allowed = metrics_for(task)
    if metric not in allowed:
        raise FieldError("gate.metric", f"{metric!r} is not a {task} metric", ", ".join(allowed))
    lower = not METRICS[metric].greater_is_better
    bound, other = ("ceiling", "floor") if lower else ("floor", "ceiling")
    direction = "lower" if lower else "higher"
    if getattr(gate, other) is not None or getattr(gate, bound) is None:
        raise FieldError(
            f"gate.{bound}",
            f"{metric} is better {direction}, so the gate needs a {bound} (and no {other})",
            f"gate.{bound}: <number>",
        )
