"""The YAML a new model starts from: every ``ModelSpec`` field, its default and a comment.

The fields and their defaults are read from ``ModelSpec`` itself, so a field added there
appears in every skeleton written afterwards; its comment comes from ``NOTES``, and a
field without one stops ``model_skeleton`` (a test writes a skeleton for every task), so
a new field cannot reach users undocumented.  The notes live here rather than in
``Field(description=...)`` so that the spec module stays a list of rules.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from training_pipeline.ml.metrics import METRICS, metrics_for
from training_pipeline.ml.tasks import TASKS
from training_pipeline.spec.errors import FieldError
from training_pipeline.spec.model_spec import NAME_PATTERN, SCORES_SCHEMA, ModelSpec

COMPONENT_TYPE = "training_pipeline.components.TrainedModel"
DEFAULT_FRACTION = 0.2  # holdout share when there is no time column to split on
CHANCE_FLOOR = 0.5  # ROC AUC of guessing: the lowest floor that means anything

# One note per field (dotted path): what it does and what is allowed.  `{task}`,
# `{metrics}`, `{primary}` and `{families}` are filled in for the skeleton's task.
NOTES: dict[str, str] = {
    "name": "the model's name: asset keys <name>/..., registry <data>/models/<name>/; "
    + NAME_PATTERN.replace("{", "{{").replace("}", "}}"),
    "description": "free text, shown in the UI and the model card",
    "label_description": "what the label records, for the model card",
    "features": "the dbt model of one row per example, as <schema>.<model>; must be in the "
    "dbt manifest",
    "id_column": "a column of the features model identifying a row's entity",
    "time_column": "optional date/timestamp column; set, holdout and tuning folds split by time",
    "label": "the column to predict; rows whose label is null are the rows scored",
    "task": "binary | regression",
    "label_horizon": "how far past its time a row's label looks (keeps folds apart), e.g. 0d, "
    "30d, 2w",
    "columns": "feature roles: declared, or null to infer them from the warehouse types",
    "columns.numeric": "null = every integer/decimal/double column; or a list of columns",
    "columns.categorical": "null = every text/boolean column; or a list of columns",
    "columns.exclude": "columns never used as features (id, time and label never are)",
    "metrics": "what the model is judged and reported on",
    "metrics.primary": "null = {primary}; one of {metrics}",
    "metrics.report": "null = all of {metrics}; or a list of them",
    "families": "null = all of {families}; or a list of them",
    "search_spaces": "per family, per parameter: [low, high] or [low, high, log]; {{}} = "
    "the built-in spaces",
    "tuning": "the hyperparameter search (successive halving over row subsamples)",
    "tuning.trials": "most trials to run; an integer >= 1",
    "tuning.seconds": "time budget of the search in seconds (> 0); the final refit is extra",
    "tuning.threads": "null = every core this process may use; or an integer >= 1",
    "tuning.seed": "random seed of the search and the models",
    "tuning.folds": "cross-validation folds; an integer >= 2",
    "tuning.valid_periods": "time values per validation fold (with time_column); >= 1",
    "tuning.min_rung_rows": "rows of the smallest subsample a trial starts on; >= 1",
    "tuning.halving_factor": "how much each rung grows the subsample and cuts trials; >= 2",
    "holdout": "the rows kept out of tuning to judge the candidate",
    "holdout.last_periods": "the latest N time values (with time_column only); null = 2",
    "holdout.fraction": "a random share 0 < f < 0.5 (without time_column only, then required)",
    "holdout.stratify": "keep the label's classes in proportion (classification, fraction)",
    "gate": "what a candidate must reach to replace production",
    "gate.metric": "null = metrics.primary; one of {metrics}",
    "gate.floor": "lowest allowed value, for a metric where higher is better (ROC AUC: "
    "0.5 is chance); else null",
    "gate.ceiling": "highest allowed value, for a metric where lower is better; else null",
    "gate.tolerance": "non-inferiority margin: how much worse than production a candidate "
    "may be at the worst end of the confidence interval; >= 0",
    "gate.confidence": "coverage of the paired bootstrap interval; between 0.5 and 1",
    "gate.resamples": "paired bootstrap resamples of the holdout; 100 to 100000",
    "retraining": "when the model is trained again",
    "retraining.policy": "on_drift | on_new_data | cron",
    "retraining.cron": "cron schedule for policy cron and the nightly retrain",
    "retraining.nightly": "true = also retrain on the cron schedule whatever the policy",
    "retraining.drift_cooldown": "after a drift retrain, drift retrains again only on new data "
    "and after this long, e.g. 0s, 30m, 6h, 1d",
    "drift": "how the features are compared with the training data",
    "drift.reference_periods": "latest time values of the training set compared against; >= 1",
    "drift.current_periods": "latest time values of the features compared (1 = the scored "
    "snapshot; one row per period wants more); >= 1",
    "drift.min_rows": "fewer rows in either window and drift is not judged (said so); >= 1",
    "drift.exclude": "columns not monitored (e.g. ones that grow with calendar time)",
    "drift.numeric_method": "Evidently stattest for numeric columns",
    "drift.categorical_method": "Evidently stattest for categorical columns",
    "drift.column_threshold": "a column drifts when its stattest score passes this",
    "drift.warn_share": "WARN above this share of drifted columns; 0 <= warn < error",
    "drift.error_share": "ERROR (and on_drift retrains) at this share; <= 1",
    "drift.predictions_window": "scores = the prediction-drift check reads the batch scores; "
    "live = what `training-pipeline serve` returned (its ingested log)",
    "drift.live_hours": "live window: the last this many hours of served predictions; >= 1",
    "scores": "where the production model's predictions are written",
    "scores.table": f"null = {SCORES_SCHEMA}.<name>; or {SCORES_SCHEMA}.<table>",
    "scores.score_column": "the column of the probability (binary) or predicted value",
    "scores.prediction_column": "binary only: the column of score >= the chosen threshold",
    "deployment": "how a promoted model is tried before it serves",
    "deployment.canary_rows": "rows scored as a smoke test before promotion; >= 1",
    "freshness": "what the production model promises about its data",
    "freshness.max_training_data_age": "the check fails (and alerts) when production's newest "
    "training data is older, e.g. 36h, 30d; null = no promise",
    "serve": "the online server (training-pipeline serve) and this model's candidates",
    "serve.shadow": "true = the newest candidate that passed the gate gets a copy of every "
    "request; its predictions are logged, never returned",
    "serve.min_shadow_period": "a promotion waits until the candidate has shadowed this "
    "long, e.g. 6h, 2d; needs shadow: true; null = no wait",
    "pool": "Dagster pool the tuning step runs in (limits concurrent training)",
}


class SkeletonError(ValueError):
    """An option of ``new-model`` that cannot make a model that loads."""


def _gate_bound(task: str, bound: float | None) -> dict[str, float]:
    metric = TASKS[task].primary_metric
    if not METRICS[metric].greater_is_better:
        if bound is None:
            raise SkeletonError(
                f"task {task} is gated by a ceiling on {metric}, in the label's units, and "
                "no default fits every label: pass --gate-bound NUMBER"
            )
        return {"gate.ceiling": bound}
    return {"gate.floor": CHANCE_FLOOR if bound is None else bound}


def skeleton_values(
    name: str,
    features: str,
    label: str,
    id_column: str,
    task: str = "binary",
    time_column: str | None = None,
    gate_bound: float | None = None,
    numeric: tuple[str, ...] | None = None,
    categorical: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The values the skeleton sets, by dotted field; every other field keeps its default."""
    if task not in TASKS:
        raise SkeletonError(f"task {task!r} is not one of {', '.join(TASKS)}")
    values: dict[str, Any] = {
        "name": name,
        "features": features,
        "id_column": id_column,
        "time_column": time_column,
        "label": label,
        "task": task,
        "columns.numeric": numeric,
        "columns.categorical": categorical,
        **_gate_bound(task, gate_bound),
    }
    if time_column is None:
        values["holdout.fraction"] = DEFAULT_FRACTION
    return values


def _fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, Any, bool]]:
    """(dotted path, default, is a section) of every field, in declaration order."""
    for field_name, info in model.model_fields.items():
        path = f"{prefix}{field_name}"
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        section = isinstance(default, BaseModel)
        yield path, default, section
        if section:
            yield from _fields(type(default), f"{path}.")


def attributes(values: Mapping[str, Any]) -> dict[str, Any]:
    """Every field of ``ModelSpec`` with ``values`` over the defaults, nested as in YAML."""
    result: dict[str, Any] = {}
    for path, default, section in _fields(ModelSpec):
        *parents, leaf = path.split(".")
        target = result
        for parent in parents:
            target = target[parent]
        target[leaf] = {} if section else values.get(path, default)
    return result


def _problem(error: Mapping[str, Any]) -> str:
    original = error.get("ctx", {}).get("error")
    if isinstance(original, FieldError):
        return str(original)
    return f"field {'.'.join(map(str, error['loc']))}: {error['msg']}"


def _scalar(value: Any) -> str:
    # JSON's lists, strings, numbers, true/false and null are all valid YAML.
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def model_skeleton(values: Mapping[str, Any]) -> str:
    """The ``defs.yaml`` text: a TrainedModel with every field, its value and its note.

    Raises:
        SkeletonError: the values break a rule of ``ModelSpec`` (each field named).
        KeyError: a field of ``ModelSpec`` has no note in ``NOTES``.
    """
    try:
        spec = ModelSpec.model_validate(attributes(values))
    except ValidationError as error:
        raise SkeletonError("; ".join(_problem(e) for e in error.errors())) from error
    fill = {
        "task": spec.task,
        "metrics": ", ".join(metrics_for(spec.task)),
        "primary": spec.primary_metric,
        "families": ", ".join(TASKS[spec.task].families),
    }
    lines = [f"type: {COMPONENT_TYPE}", "attributes:"]
    for path, default, section in _fields(ModelSpec):
        if path not in NOTES:
            raise KeyError(f"ModelSpec field {path!r} has no note in spec/model_skeleton.py")
        depth = path.count(".") + 1
        key = f"{'  ' * depth}{path.rsplit('.', 1)[-1]}:"
        text = key if section else f"{key} {_scalar(values.get(path, default))}"
        lines.append(f"{text:<34} # {NOTES[path].format(**fill)}")
    return "\n".join(lines) + "\n"
