"""The one declaration of a prediction problem: used by training, validation and scoring.

A ``ProblemSpec`` says where the rows are, which column is the label, the id and the
time, what the task is, which columns are features (declared, or inferred from the
frame's types), how to hold data out, which metrics to report and gate on, and how to
watch for drift.  It is pure data, validated when built: a wrong value fails with the
field's name and what is allowed, before anything trains.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from training_pipeline.ml.metrics import metric, rankable_metrics_for
from training_pipeline.ml.tasks import Task, task_of

if TYPE_CHECKING:  # pandas loads when rows are read, not when a spec is validated
    import pandas as pd

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class GatePolicy:
    """A challenger needs ``metric`` at least ``floor`` (higher is better) or at most
    ``ceiling`` (lower is better), and must be no worse than the champion by more than
    ``tolerance`` (the non-inferiority margin) at the worst end of the ``confidence``
    interval of the paired difference (``ml/comparison.py``, ``resamples`` resamples)."""

    metric: str
    floor: float | None = None
    ceiling: float | None = None
    tolerance: float = 0.01
    confidence: float = 0.95
    resamples: int = 1000

    def __post_init__(self) -> None:
        chosen = metric(self.metric, field="gate.metric")
        if (self.floor is None) == (self.ceiling is None):
            raise ValueError("gate: give exactly one of floor (higher is better) or ceiling")
        if chosen.greater_is_better and self.floor is None:
            raise ValueError(
                f"gate.ceiling: {self.metric} is higher-is-better; give gate.floor instead"
            )
        if not chosen.greater_is_better and self.ceiling is None:
            raise ValueError(
                f"gate.floor: {self.metric} is lower-is-better; give gate.ceiling instead"
            )
        if self.tolerance < 0:
            raise ValueError(f"gate.tolerance: must not be negative, got {self.tolerance}")
        if not 0.5 < self.confidence < 1:
            raise ValueError(f"gate.confidence: must be in (0.5, 1), got {self.confidence}")
        if self.resamples < 100:
            raise ValueError(f"gate.resamples: must be at least 100, got {self.resamples}")

    @property
    def bound(self) -> float:
        return self.floor if self.floor is not None else float(self.ceiling)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Holdout:
    """The last ``last_periods`` time values, or (no time column) a ``fraction`` of rows,
    stratified by the label for classification when ``stratify``."""

    last_periods: int | None = 2
    fraction: float | None = None
    stratify: bool = True


@dataclass(frozen=True)
class DriftSettings:
    """How drift is measured: see ``ml/drift.py``."""

    reference_periods: int = 4  # most recent time values of the training set
    # The current window: the newest time values of the features relation.  One row per
    # period (a daily problem) needs several periods for a distribution to compare.
    current_periods: int = 1
    # Fewer rows than this in either window and drift is not judged: a test on a handful
    # of rows flags noise as drift.
    min_rows: int = 30
    exclude: tuple[str, ...] = ()  # features not monitored (e.g. they trend with time)
    numeric_method: str = "wasserstein"
    categorical_method: str = "jensenshannon"
    column_threshold: float = 0.1
    warn_share: float = 0.0  # WARN when the drifted share exceeds this
    error_share: float = 0.5  # ERROR from this share on
    # Prediction drift's current window: "scores" (the batch scores of the newest
    # current_periods) or "live" (what the online server returned over live_hours).
    predictions_window: str = "scores"
    live_hours: int = 24


@dataclass(frozen=True)
class ScoreColumns:
    score: str = "score"  # the model output: probability or predicted value
    prediction: str = "prediction"  # binary only: score >= threshold


@dataclass(frozen=True)
class InferredRoles:
    """Feature roles as the frame's types gave them, for the asset to log and store."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    excluded: tuple[str, ...]

    def to_dict(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True, kw_only=True)
class ProblemSpec:
    name: str
    description: str  # what a score means, for the model card
    label_description: str  # what the label records, for the model card
    relation: str  # <schema>.<table> holding one row per id and time value
    id_column: str
    label: str
    time_column: str | None = None
    task: str = "binary"
    # How far past its time a row's label looks: rows are usable for training at time d
    # only when time + label_horizon <= d (purging).
    label_horizon: timedelta = timedelta(0)
    numeric: tuple[str, ...] | None = None  # None: infer from the frame
    categorical: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()  # never features
    primary_metric: str | None = None  # None: the task's default
    report_metrics: tuple[str, ...] | None = None
    families: tuple[str, ...] | None = None
    holdout: Holdout = field(default_factory=Holdout)
    gate: GatePolicy
    drift: DriftSettings = field(default_factory=DriftSettings)
    scores: ScoreColumns = field(default_factory=ScoreColumns)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"name: {self.name!r} must match {_NAME.pattern}")
        task = task_of(self.task)
        # Defaults resolved once, so every reader sees concrete values.
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        set_("primary_metric", self.primary_metric or task.primary_metric)
        set_("report_metrics", tuple(self.report_metrics or task.report_metrics))
        set_("families", tuple(self.families or task.families))
        for name, value in (("numeric", self.numeric), ("categorical", self.categorical)):
            if value is not None:
                set_(name, tuple(value))
        set_("exclude", tuple(self.exclude))
        self._check(task)

    def _check(self, task: Task) -> None:
        allowed = rankable_metrics_for(task.name)
        if self.primary_metric not in allowed:
            raise ValueError(
                f"primary_metric: {self.primary_metric!r} is not a {task.name} metric tuning "
                f"can rank by; allowed: {', '.join(allowed)}"
            )
        for name in self.report_metrics or ():
            metric(name, task.name, field="report_metrics")
        metric(self.gate.metric, task.name, field="gate.metric")
        for family in self.families or ():
            if family not in task.families:
                raise ValueError(
                    f"families: {family!r} is not a {task.name} family; allowed: "
                    f"{', '.join(task.families)}"
                )
        if self.label_horizon < timedelta(0):
            raise ValueError(f"label_horizon: must not be negative, got {self.label_horizon}")
        # The id may be the time column itself (one row per day); the label is neither.
        special = {self.id_column, self.label, self.time_column} - {None}
        if self.label in (self.id_column, self.time_column):
            raise ValueError("label: must differ from id_column and time_column")
        for role in ("numeric", "categorical"):
            clash = sorted(special & set(getattr(self, role) or ()))
            if clash:
                raise ValueError(f"{role}: {clash} are the id, time or label column")
        both = sorted(set(self.numeric or ()) & set(self.categorical or ()))
        if both:
            raise ValueError(f"numeric and categorical both list {both}")
        self._check_holdout()
        self._check_drift()

    def _check_holdout(self) -> None:
        h = self.holdout
        if self.time_column is None:
            if h.fraction is None:
                raise ValueError("holdout.fraction: required when there is no time_column")
        elif h.last_periods is None:
            raise ValueError("holdout.last_periods: required when there is a time_column")
        if h.fraction is not None and not 0 < h.fraction < 0.5:
            raise ValueError(f"holdout.fraction: must be in (0, 0.5), got {h.fraction}")
        if h.fraction is not None and self.time_column is not None:
            raise ValueError("holdout.fraction: only without a time_column; use last_periods")
        if self.time_column is not None and h.last_periods is not None and h.last_periods < 1:
            raise ValueError(f"holdout.last_periods: must be at least 1, got {h.last_periods}")

    def _check_drift(self) -> None:
        d = self.drift
        for name in ("reference_periods", "current_periods", "min_rows", "live_hours"):
            if getattr(d, name) < 1:
                raise ValueError(f"drift.{name}: must be at least 1, got {getattr(d, name)}")
        if d.predictions_window not in ("scores", "live"):
            raise ValueError(
                f"drift.predictions_window: {d.predictions_window!r}; allowed: scores, live"
            )
        if d.column_threshold <= 0:
            raise ValueError(f"drift.column_threshold: must be positive, got {d.column_threshold}")
        if not 0 <= d.warn_share < d.error_share <= 1:
            raise ValueError(
                "drift.warn_share, drift.error_share: need 0 <= warn_share < error_share <= 1, "
                f"got {d.warn_share} and {d.error_share}"
            )

    @property
    def horizon_text(self) -> str:
        """The label horizon for people: "30 days", or "6:00:00" when not whole days."""
        import pandas as pd

        horizon = pd.Timedelta(self.label_horizon)
        return f"{horizon.days} days" if horizon == horizon.floor("D") else str(horizon)

    @property
    def task_adapter(self) -> Task:
        return task_of(self.task)

    @property
    def roles_known(self) -> bool:
        return self.numeric is not None and self.categorical is not None

    @property
    def features(self) -> tuple[str, ...]:
        if not self.roles_known:
            raise ValueError(
                f"problem {self.name!r}: feature roles are not known yet; call "
                "resolve_roles(spec, frame) on the training rows first"
            )
        return (*self.numeric, *self.categorical)  # type: ignore[misc]

    @property
    def keys(self) -> tuple[str, ...]:
        """The id and (if any) time column: what identifies a row."""
        if self.time_column in (None, self.id_column):
            return (self.id_column,)
        return (self.id_column, self.time_column)

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.keys, *self.features, self.label)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values, e.g. for the registry's metadata."""
        import pandas as pd

        data = dataclasses.asdict(self)
        data["label_horizon"] = pd.Timedelta(self.label_horizon).isoformat()
        return data


def _inferred_role(values: pd.Series) -> str | None:
    import pandas as pd

    if pd.api.types.is_bool_dtype(values):
        return "categorical"
    if pd.api.types.is_numeric_dtype(values):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(values):
        return None
    present = values.dropna()
    if len(present) and all(isinstance(v, Decimal) for v in present):
        return "numeric"  # DECIMAL from Parquet arrives as Python Decimals
    return "categorical"


def resolve_roles(spec: ProblemSpec, frame: pd.DataFrame) -> tuple[ProblemSpec, InferredRoles]:
    """The spec with every feature role filled in from ``frame``'s types where undeclared.

    Numbers become numeric features; strings and booleans categorical; dates and times
    are excluded (a date is no feature without engineering).  The id, time and label
    columns and ``spec.exclude`` are never features.  Declared roles are kept as they are.

    Raises:
        ValueError: A declared or excluded column that the frame does not have.
    """
    declared = [*(spec.numeric or ()), *(spec.categorical or ()), *spec.exclude]
    missing = [c for c in (*spec.keys, spec.label, *declared) if c not in frame.columns]
    if missing:
        raise ValueError(f"problem {spec.name!r}: the rows have no column(s) {missing}")
    taken = {
        *spec.keys,
        spec.label,
        *spec.exclude,
        *(spec.numeric or ()),
        *(spec.categorical or ()),
    }
    found: dict[str, list[str]] = {"numeric": [], "categorical": [], "excluded": []}
    for column in frame.columns:
        if column not in taken:
            found[_inferred_role(frame[column]) or "excluded"].append(column)
    numeric = spec.numeric if spec.numeric is not None else tuple(found["numeric"])
    categorical = spec.categorical if spec.categorical is not None else tuple(found["categorical"])
    # With one role declared, the other role's type matches are not features either.
    unused = [
        c
        for role in ("numeric", "categorical")
        if getattr(spec, role) is not None
        for c in found[role]
    ]
    inferred = InferredRoles(
        numeric=tuple(found["numeric"]) if spec.numeric is None else (),
        categorical=tuple(found["categorical"]) if spec.categorical is None else (),
        excluded=(*spec.exclude, *found["excluded"], *unused),
    )
    resolved = dataclasses.replace(spec, numeric=numeric, categorical=categorical)
    if not resolved.features:
        raise ValueError(f"problem {spec.name!r}: no feature columns are left")
    return resolved, inferred
