"""A trained model's declaration, validated: every field, its default and its rule.

``ModelSpec`` is what a ``TrainedModel`` YAML means once its templates are resolved.
Every field has a default that fits most problems; a value that breaks a rule raises
``FieldError`` naming the field and what is allowed.  Rules that need the outside world
(the features relation and its columns in the dbt manifest) are checked by the component.

The tasks, their metrics and families are the ml package's (``ml/tasks.py``,
``ml/metrics.py``), and a spec is valid only once its ``ProblemSpec`` builds: the checks
here exist to name the YAML field, the ml package has the last word.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Literal

from pydantic import model_validator

from training_pipeline.ml.metrics import metrics_for, rankable_metrics_for
from training_pipeline.ml.problem import ProblemSpec
from training_pipeline.ml.tasks import TASKS
from training_pipeline.spec.errors import FieldError
from training_pipeline.spec.model_gate import Gate, check_gate
from training_pipeline.spec.model_parts import (
    Columns,
    Deployment,
    Drift,
    Freshness,
    Holdout,
    MetricChoice,
    Retraining,
    Scores,
    Serve,
    Tuning,
    _Part,
)
from training_pipeline.spec.model_problem import problem_of

Task = Literal["binary", "regression"]  # the keys of ml.tasks.TASKS (a test keeps them equal)
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
RELATION_PATTERN = r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$"
HORIZON_PATTERN = r"^(\d+)([dw])$"
SCORES_SCHEMA = "predictions"


def _listed(values) -> str:
    return ", ".join(values)


class ModelSpec(_Part):
    """One model: what it learns from, how it is tuned, gated, monitored and retrained."""

    name: str
    description: str = ""  # what a score means, for the model card
    label_description: str = ""  # what the label records, for the model card
    features: str  # <schema>.<dbt model>
    id_column: str
    time_column: str | None = None
    label: str
    task: Task = "binary"
    label_horizon: str = "0d"
    columns: Columns = Columns()
    metrics: MetricChoice = MetricChoice()
    families: tuple[str, ...] | None = None
    search_spaces: dict[str, dict[str, list[float | str | bool]]] = {}
    tuning: Tuning = Tuning()
    holdout: Holdout = Holdout()
    gate: Gate = Gate()
    retraining: Retraining = Retraining()
    drift: Drift = Drift()
    scores: Scores = Scores()
    deployment: Deployment = Deployment()
    freshness: Freshness = Freshness()
    serve: Serve = Serve()
    pool: str = "training"

    @model_validator(mode="after")
    def _rules(self) -> ModelSpec:
        _check_names(self)
        _check_task_choices(self)
        _check_holdout(self)
        _check_gate(self)
        _check_search_spaces(self)
        _check_scores(self)
        self.problem  # noqa: B018 - the ml package's own rules, named by YAML field
        return self

    @property
    def primary_metric(self) -> str:
        return self.metrics.primary or TASKS[self.task].primary_metric

    @property
    def report_metrics(self) -> tuple[str, ...]:
        return self.metrics.report or TASKS[self.task].report_metrics

    @property
    def model_families(self) -> tuple[str, ...]:
        return self.families or TASKS[self.task].families

    @property
    def gate_metric(self) -> str:
        return self.gate.metric or self.primary_metric

    @property
    def holdout_periods(self) -> int | None:
        """How many of the latest time values are held out; None with a fraction holdout."""
        if self.time_column is None:
            return None
        return self.holdout.last_periods or 2

    @property
    def label_horizon_days(self) -> int:
        count, unit = re.fullmatch(HORIZON_PATTERN, self.label_horizon).groups()
        return int(count) * (7 if unit == "w" else 1)

    @property
    def scores_table(self) -> str:
        return self.scores.table or f"{SCORES_SCHEMA}.{self.name}"

    @property
    def features_schema(self) -> str:
        return self.features.split(".", 1)[0]

    @property
    def features_model(self) -> str:
        return self.features.split(".", 1)[1]

    @property
    def problem(self) -> ProblemSpec:
        """The ml package's view of this declaration (spec/model_problem.py).

        Raises:
            FieldError: the ml package refuses a value, named by its YAML field.
        """
        return problem_of(self)

    @property
    def spec_hash(self) -> str:
        """sha256 of the canonical JSON of every field but ``NOT_HASHED``: equal specs,
        equal hashes."""
        dump = _without_later_defaults(self.model_dump(mode="json"))
        canonical = json.dumps(dump, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


# Fields added after declarations were deployed, with their defaults: left out of the
# hash while at those defaults, so an unchanged declaration keeps its hash (a changed
# hash retrains the model).  ``serve`` is never hashed: it changes how the model is
# served, not what is trained.
LATER_DEFAULTS: dict[str, dict] = {"drift": {"predictions_window": "scores", "live_hours": 24}}
NOT_HASHED = ("serve",)


def _without_later_defaults(dump: dict) -> dict:
    dump = {k: v for k, v in dump.items() if k not in NOT_HASHED}
    for section, defaults in LATER_DEFAULTS.items():
        dump[section] = {
            k: v for k, v in dump[section].items() if k not in defaults or defaults[k] != v
        }
    return dump


def _check_names(spec: ModelSpec) -> None:
    if not re.fullmatch(NAME_PATTERN, spec.name):
        raise FieldError("name", f"{spec.name!r} does not match", f"text matching {NAME_PATTERN}")
    if not re.fullmatch(RELATION_PATTERN, spec.features):
        raise FieldError(
            "features", f"{spec.features!r} is not <schema>.<dbt model>", "e.g. features.my_rows"
        )
    if not re.fullmatch(HORIZON_PATTERN, spec.label_horizon):
        raise FieldError(
            "label_horizon", f"{spec.label_horizon!r} is not a duration", "e.g. 0d, 30d, 2w"
        )
    if spec.label in (spec.id_column, spec.time_column):
        raise FieldError(
            "label", "is the id_column or time_column", "a column other than those two"
        )
    schema, _, table = spec.scores_table.partition(".")
    if schema != SCORES_SCHEMA or not re.fullmatch(r"[a-z_][a-z0-9_]*", table):
        raise FieldError(
            "scores.table", f"{spec.scores_table!r} is not allowed", f"{SCORES_SCHEMA}.<table>"
        )


def _check_task_choices(spec: ModelSpec) -> None:
    allowed = rankable_metrics_for(spec.task)
    if spec.primary_metric not in allowed:
        raise FieldError(
            "metrics.primary",
            f"{spec.primary_metric!r} is not a {spec.task} metric",
            _listed(allowed),
        )
    reportable = metrics_for(spec.task)
    if unknown := [m for m in spec.report_metrics if m not in reportable]:
        raise FieldError(
            "metrics.report", f"{_listed(unknown)} not {spec.task} metrics", _listed(reportable)
        )
    families = TASKS[spec.task].families
    if unknown := [f for f in spec.model_families if f not in families]:
        raise FieldError(
            "families", f"{_listed(unknown)} not {spec.task} families", _listed(families)
        )


def _check_holdout(spec: ModelSpec) -> None:
    holdout = spec.holdout
    if spec.time_column is None:
        if holdout.last_periods is not None:
            raise FieldError(
                "holdout.last_periods", "needs time_column", "holdout.fraction without time_column"
            )
        if holdout.fraction is None:
            raise FieldError(
                "holdout.fraction", "is required when time_column is not set", "0 < fraction < 0.5"
            )
    elif holdout.fraction is not None:
        raise FieldError(
            "holdout.fraction", "is for data without time_column", "holdout.last_periods"
        )
    if holdout.fraction is not None and not 0 < holdout.fraction < 0.5:
        raise FieldError("holdout.fraction", f"{holdout.fraction}", "0 < fraction < 0.5")
    if holdout.last_periods is not None and holdout.last_periods < 1:
        raise FieldError("holdout.last_periods", f"{holdout.last_periods}", "an integer >= 1")


def _check_gate(spec: ModelSpec) -> None:
    check_gate(spec.gate, spec.gate_metric, spec.task)


def _check_search_spaces(spec: ModelSpec) -> None:
    # The ml package searches its own space per family (ml/pipelines.py suggest_params).
    if spec.search_spaces:
        raise FieldError("search_spaces", "cannot be overridden by the training code", "{}")


def _check_scores(spec: ModelSpec) -> None:
    named = (spec.scores.score_column, spec.scores.prediction_column)
    taken = {spec.id_column, spec.time_column, "model_version", "scored_at"}
    for field, column in zip(("score_column", "prediction_column"), named, strict=True):
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", column) or column in taken:
            raise FieldError(
                f"scores.{field}",
                f"{column!r} is not a free column name of the scores table",
                "a lowercase name other than the id, time, model_version and scored_at columns",
            )
    if named[0] == named[1]:
        raise FieldError("scores.prediction_column", "equals scores.score_column", "another name")
