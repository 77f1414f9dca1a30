"""A model declaration as the ml package reads it: ``ModelSpec`` to ``ProblemSpec``.

``ModelSpec`` builds its ``ProblemSpec`` while validating, so a declaration the ml package
would refuse is refused at load, with the ml package's own message under the YAML field.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING

from training_pipeline.ml import problem as ml
from training_pipeline.spec.errors import FieldError

if TYPE_CHECKING:
    from training_pipeline.spec.model_spec import ModelSpec


def problem_of(spec: ModelSpec) -> ml.ProblemSpec:
    """The ml package's view of declaration ``spec``: the one place the two meet.

    Raises:
        FieldError: the ml package refuses a value, named by its YAML field.
    """
    columns, drift = spec.columns, spec.drift
    try:
        return ml.ProblemSpec(
            name=spec.name,
            description=spec.description,
            label_description=spec.label_description,
            relation=spec.features,
            id_column=spec.id_column,
            label=spec.label,
            time_column=spec.time_column,
            task=spec.task,
            label_horizon=timedelta(days=spec.label_horizon_days),
            numeric=_without(columns.numeric, columns.exclude),
            categorical=_without(columns.categorical, columns.exclude),
            exclude=columns.exclude,
            primary_metric=spec.primary_metric,
            report_metrics=spec.report_metrics,
            families=spec.model_families,
            holdout=ml.Holdout(
                last_periods=spec.holdout_periods,
                fraction=spec.holdout.fraction,
                stratify=spec.holdout.stratify,
            ),
            gate=ml.GatePolicy(
                spec.gate_metric,
                spec.gate.floor,
                spec.gate.ceiling,
                spec.gate.tolerance,
                spec.gate.confidence,
                spec.gate.resamples,
            ),
            drift=ml.DriftSettings(**drift.model_dump()),
            scores=ml.ScoreColumns(spec.scores.score_column, spec.scores.prediction_column),
        )
    except FieldError:
        raise
    except ValueError as error:
        raise _field_error(str(error)) from None


# ProblemSpec's field names where the YAML spells them differently.
ML_FIELDS = {
    "primary_metric": "metrics.primary",
    "report_metrics": "metrics.report",
    "numeric": "columns.numeric",
    "categorical": "columns.categorical",
}


def _field_error(message: str) -> FieldError:
    """ProblemSpec's ``"<field>: <problem>"`` as the YAML field's error; a rule about
    several fields is reported against the whole declaration."""
    field, separator, problem = message.partition(": ")
    if separator and re.fullmatch(r"[a-z_.]+", field):
        return FieldError(ML_FIELDS.get(field, field), problem)
    return FieldError("attributes", message)


def _without(names: tuple[str, ...] | None, excluded: tuple[str, ...]) -> tuple[str, ...] | None:
    return None if names is None else tuple(c for c in names if c not in excluded)
