"""The one place a ``ModelSpec`` becomes the inputs of the ml package.

Today's ml code trains binary classifiers on declared numeric and categorical columns,
gates on ROC AUC and reads the features from one relation; a declaration asking for
more is refused at load with the field that asks, rather than trained as something
else.  Porting to a task-generic ml API means rewriting this module and the refusals.
"""

from __future__ import annotations

from dataclasses import dataclass

from training_pipeline.ml.datasets import FEATURES_TABLE
from training_pipeline.ml.evaluation import GatePolicy
from training_pipeline.ml.feature_spec import FeatureSpec
from training_pipeline.ml.tuning import METRICS
from training_pipeline.spec.errors import FieldError
from training_pipeline.spec.model_spec import Drift, ModelSpec

SUPPORTED_TASK = "binary"
GATE_METRIC = "roc_auc"


@dataclass(frozen=True)
class MlInputs:
    """What the ml functions take for one declared model."""

    features: FeatureSpec
    gate: GatePolicy
    tuning_metric: str
    families: tuple[str, ...]
    monitored: tuple[str, ...]  # features whose drift is measured
    reference_snapshots: int
    drift_share_error: float


def _require(field: str, ok: bool, problem: str, allowed: str) -> None:
    if not ok:
        raise FieldError(field, f"{problem} (today's training code)", allowed)


def _check_supported(spec: ModelSpec) -> None:
    _require("task", spec.task == SUPPORTED_TASK, f"{spec.task!r} cannot be trained", "binary")
    _require("time_column", spec.time_column is not None, "is required", "a date column")
    declared = spec.columns.numeric is not None and spec.columns.categorical is not None
    _require("columns", declared, "roles cannot be inferred", "columns.numeric and categorical")
    _require(
        "metrics.primary",
        spec.primary_metric in METRICS,
        f"{spec.primary_metric!r} cannot be tuned for",
        ", ".join(METRICS),
    )
    _require("gate.metric", spec.gate_metric == GATE_METRIC, "only AUC is gated", GATE_METRIC)
    _require("search_spaces", not spec.search_spaces, "cannot be overridden", "{}")
    defaults = Drift()
    for field in ("numeric_method", "categorical_method", "column_threshold", "warn_share"):
        ours = getattr(spec.drift, field)
        _require(
            f"drift.{field}",
            ours == getattr(defaults, field),
            f"{ours!r}",
            str(getattr(defaults, field)),
        )


def check_readable(spec: ModelSpec) -> None:
    """Refuse, at run time, a features relation today's export and scoring cannot read.

    Not a load-time rule: a second model may be declared (and its graph inspected)
    before the generic ml code reads any relation.
    """
    if spec.features != FEATURES_TABLE:
        raise FieldError(
            "features",
            f"{spec.features!r} cannot be read by today's training code",
            FEATURES_TABLE,
        )


def ml_inputs(spec: ModelSpec) -> MlInputs:
    """Today's ml inputs for ``spec``.

    Raises:
        FieldError: the spec asks for something today's ml code cannot do.
    """
    _check_supported(spec)
    numeric = tuple(c for c in spec.columns.numeric if c not in spec.columns.exclude)
    categorical = tuple(c for c in spec.columns.categorical if c not in spec.columns.exclude)
    features = FeatureSpec(
        id_column=spec.id_column,
        time_column=spec.time_column,
        label=spec.label,
        numeric=numeric,
        categorical=categorical,
        label_window_days=spec.label_horizon_days,
    )
    if unknown := [c for c in spec.drift.exclude if c not in features.features]:
        raise FieldError(
            "drift.exclude", f"{', '.join(unknown)} not features", ", ".join(features.features)
        )
    return MlInputs(
        features=features,
        gate=GatePolicy(auc_floor=spec.gate.floor, max_auc_drop=spec.gate.tolerance),
        tuning_metric=spec.primary_metric,
        families=spec.model_families,
        monitored=tuple(c for c in features.features if c not in spec.drift.exclude),
        reference_snapshots=spec.drift.reference_periods,
        drift_share_error=spec.drift.error_share,
    )
