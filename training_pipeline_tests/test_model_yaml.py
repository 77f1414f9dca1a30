"""Models declared in YAML: the churn example's graph, every default of a declaration,
and each mistake refused at load naming the file, the model, the field and what is
allowed."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import typing
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pydantic
import pytest
import yaml
from churn_model import LOAD_SETTINGS, churn_definitions
from project_folders import project_folder

from training_pipeline.components import COMPONENT_TYPES
from training_pipeline.components.errors import DeclarationError
from training_pipeline.components.loader import load_project
from training_pipeline.components.trained_model import TrainedModel
from training_pipeline.environment import read
from training_pipeline.ml.tasks import TASKS
from training_pipeline.project import parse_project
from training_pipeline.resources import build_resources
from training_pipeline.settings import DEFAULT_PROJECT_DIR, PROJECT_DBT_MODELS, Settings
from training_pipeline.spec import model_spec
from training_pipeline.spec.errors import FieldError
from training_pipeline.spec.model_spec import ModelSpec

CHURN_YAML = DEFAULT_PROJECT_DIR / "defs" / "churn" / "model" / "defs.yaml"
TYPE = "training_pipeline.components.TrainedModel"


def churn_attributes() -> dict:
    return yaml.safe_load(CHURN_YAML.read_text())["attributes"]


def declare(project_dir: Path, folder: str, attributes: dict) -> Path:
    path = project_dir / "defs" / folder / "model" / "defs.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"type": TYPE, "attributes": attributes}, sort_keys=False))
    return path


@pytest.fixture
def project(tmp_path: Path, settings: Settings) -> Settings:
    return replace(settings, project_dir=project_folder(tmp_path / "project"))


def runnable(defs: dg.Definitions, settings: Settings) -> dg.Definitions:
    """``defs`` with the pipeline's resources, as the definitions merge them."""
    return dg.Definitions.merge(defs, dg.Definitions(resources=build_resources(settings)))


def names(defs: dg.Definitions) -> dict[str, set[str]]:
    graph = defs.resolve_asset_graph()
    return {
        "assets": {k.to_user_string() for k in graph.get_all_asset_keys()},
        "checks": {f"{c.asset_key.to_user_string()}:{c.name}" for c in graph.asset_check_keys},
        "jobs": {job.name for job in defs.jobs},
        "schedules": {schedule.name for schedule in defs.schedules},
        "sensors": {sensor.name for sensor in defs.sensors},
    }


# --- the churn example --------------------------------------------------------------------


def test_the_churn_example_owns_exactly_these_assets_checks_jobs_schedules_and_sensors(
    settings,
):
    found = names(runnable(churn_definitions(), settings))

    assert found == {
        "assets": {
            "churn/training_set",
            "churn/candidate",
            "churn/validation",
            "churn/production",
            "churn/scores",
            "churn/live_predictions",
            "features/customer_snapshots",  # a dependency: the dbt assets own it
        },
        "checks": {
            "churn/validation:passes_gate",
            "features/customer_snapshots:churn_feature_drift",
            "churn/scores:prediction_drift",
            "churn/production:production_artifact_verifies",
            "churn/production:training_data_fresh",
        },
        "jobs": {"churn__retrain"},
        "schedules": {"churn__nightly_retrain"},
        "sensors": {"churn__drift_retraining"},
    }


def test_the_churn_model_is_grouped_tagged_pooled_and_its_gate_blocks(settings):
    defs = runnable(churn_definitions(), settings)
    graph = defs.resolve_asset_graph()
    model_keys = [k for k in graph.get_all_asset_keys() if k.path[0] == "churn"]

    assert {graph.get(k).group_name for k in model_keys} == {"churn"}
    candidate = graph.get(dg.AssetKey(["churn", "candidate"])).assets_def
    assert candidate.op.pool == "training"
    (gate,) = graph.get(dg.AssetKey(["churn", "validation"])).assets_def.check_specs
    assert gate.blocking
    assert defs.resolve_job_def("churn__retrain").tags == {"training_pipeline/model": "churn"}


def test_the_churn_yaml_takes_todays_values_and_the_declared_variable_defaults(monkeypatch):
    for variable in ("TUNING_TRIALS", "TUNING_SECONDS", "TUNING_THREADS", "GATE_AUC_FLOOR"):
        monkeypatch.delenv(f"TRAINING_PIPELINE_{variable}", raising=False)
    (spec,) = [
        c.spec
        for c in load_project(LOAD_SETTINGS, COMPONENT_TYPES).components
        if isinstance(c, TrainedModel) and c.spec.name == "churn"
    ]

    assert spec.tuning.trials == read("TRAINING_PIPELINE_TUNING_TRIALS", {}) == 20
    assert spec.tuning.seconds == read("TRAINING_PIPELINE_TUNING_SECONDS", {}) == 45
    assert spec.tuning.threads is None
    assert (spec.gate.metric, spec.gate.floor, spec.gate.tolerance) == ("roc_auc", 0.75, 0.01)
    assert spec.retraining.policy == read("TRAINING_PIPELINE_RETRAIN_POLICY", {})
    assert spec.scores_table == "predictions.churn_scores"
    assert (spec.problem.scores.score, spec.problem.scores.prediction) == (
        "churn_probability",
        "predicted_churn",
    )
    assert spec.label_horizon_days == 30 and spec.holdout_periods == 2


# --- every field's default -------------------------------------------------------------------


def test_a_declaration_naming_only_its_data_and_gate_takes_every_other_default():
    spec = ModelSpec(
        name="m",
        features="features.rows",
        id_column="id",
        time_column="day",
        label="y",
        gate={"floor": 0.7},
    )

    assert (spec.task, spec.label_horizon, spec.pool, spec.description) == (
        "binary",
        "0d",
        "training",
        "",
    )
    assert (spec.columns.numeric, spec.columns.categorical, spec.columns.exclude) == (
        None,
        None,
        (),
    )
    assert spec.primary_metric == spec.gate_metric == "roc_auc"
    assert spec.report_metrics == ("roc_auc", "pr_auc", "log_loss", "brier", "f1")
    assert spec.model_families == (
        "hist_gradient_boosting",
        "logistic_regression",
        "random_forest",
    )
    assert spec.tuning.model_dump() == {
        "trials": 50,
        "seconds": 120.0,
        "threads": None,
        "seed": 0,
        "folds": 3,
        "valid_periods": 2,
        "min_rung_rows": 2000,
        "halving_factor": 3,
    }
    assert (spec.holdout_periods, spec.holdout.fraction, spec.holdout.stratify) == (2, None, True)
    assert spec.gate.tolerance == 0.01 and spec.gate.ceiling is None
    assert spec.retraining.model_dump() == {
        "policy": "on_drift",
        "cron": "0 2 * * *",
        "nightly": True,
        "drift_cooldown": "6h",
    }
    assert spec.retraining.drift_cooldown_s == 6 * 3600
    assert spec.freshness.max_age_s == 60 * 86400
    assert spec.drift.model_dump() == {
        "reference_periods": 4,
        "current_periods": 1,
        "min_rows": 30,
        "exclude": (),
        "numeric_method": "wasserstein",
        "categorical_method": "jensenshannon",
        "column_threshold": 0.1,
        "warn_share": 0.0,
        "error_share": 0.5,
        "predictions_window": "scores",
        "live_hours": 24,
    }
    assert spec.scores_table == "predictions.m" and spec.deployment.canary_rows == 200
    assert spec.serve.model_dump() == {"shadow": False, "min_shadow_period": None}


def test_the_spec_hash_names_the_declaration_exactly():
    base = churn_attributes() | {"tuning": {"trials": 20}, "gate": {"floor": 0.75}}
    base["retraining"] = {}
    base["drift"] = {"exclude": ["tenure_days"]}
    first, same = ModelSpec.model_validate(base), ModelSpec.model_validate(copy.deepcopy(base))
    other = ModelSpec.model_validate(base | {"gate": {"floor": 0.76}})

    assert first.spec_hash == same.spec_hash and len(first.spec_hash) == 64
    assert other.spec_hash != first.spec_hash


def plain_churn_attributes() -> dict:
    """The churn declaration without its templates."""
    return churn_attributes() | {
        "tuning": {"trials": 20},
        "gate": {"floor": 0.75},
        "retraining": {},
        "drift": {"exclude": ["tenure_days"]},
    }


def test_serving_settings_at_their_defaults_leave_the_spec_hash_as_before_they_existed():
    # Regression: a new spec field changed every model's hash, which retrains the model.
    spec = ModelSpec.model_validate(plain_churn_attributes())
    dump = spec.model_dump(mode="json")
    del dump["serve"], dump["drift"]["predictions_window"], dump["drift"]["live_hours"]
    canonical = json.dumps(dump, sort_keys=True, separators=(",", ":"))

    assert spec.spec_hash == hashlib.sha256(canonical.encode()).hexdigest()


def test_the_serve_section_never_changes_the_spec_hash_but_a_live_drift_window_does():
    base = plain_churn_attributes()
    shadowed = base | {"serve": {"shadow": True, "min_shadow_period": "6h"}}
    live = base | {"drift": {"predictions_window": "live"}}
    spec = ModelSpec.model_validate(base)

    assert ModelSpec.model_validate(shadowed).spec_hash == spec.spec_hash
    assert ModelSpec.model_validate(live).spec_hash != spec.spec_hash


def test_a_minimum_shadow_period_without_shadow_serving_is_refused_naming_the_field():
    with pytest.raises(pydantic.ValidationError, match="min_shadow_period"):
        ModelSpec.model_validate(plain_churn_attributes() | {"serve": {"min_shadow_period": "6h"}})


def test_a_model_named_after_its_folder_when_the_declaration_names_none(project):
    attributes = churn_attributes()
    del attributes["name"]
    declare(project.project_dir, "renamed", attributes)
    (component,) = load_project(project, COMPONENT_TYPES).components
    assert component.spec.name == "model"  # the declaration's folder: defs/renamed/model/


# --- each mistake, refused at load ------------------------------------------------------------


def with_change(path: str, value) -> dict:
    """The churn attributes with the dotted ``path`` set to ``value`` (None: removed)."""
    attributes = churn_attributes()
    *parents, last = path.split(".")
    target = attributes
    for part in parents:
        target = target.setdefault(part, {})
    if value is None:
        target.pop(last)
    else:
        target[last] = value
    return attributes


MISTAKES = {
    "name": ("name", "Churn", "text matching ^[a-z][a-z0-9_]{0,39}$"),
    "task": ("task", "classification", "'binary' or 'regression'"),
    "label missing": ("label", None, None),
    "nested key misspelt": (
        "gate.flor",
        0.8,
        "ceiling, confidence, floor, metric, resamples, tolerance",
    ),
    "gate confidence": ("gate.confidence", 1.2, "a number between 0.5 and 1"),
    "gate resamples": ("gate.resamples", 10, "an integer from 100 to 100000"),
    "nested value": ("tuning.trials", "many", None),
    "tuning bound": ("tuning.folds", 1, "an integer >= 2"),
    "metric of another task": ("metrics.primary", "rmse", "roc_auc, pr_auc, log_loss"),
    "family of another task": ("families", ["ridge"], "hist_gradient_boosting, logistic_reg"),
    "gate bound against the direction": ("gate.ceiling", 0.3, "gate.floor: <number>"),
    "fraction with a time column": ("holdout.fraction", 0.2, "holdout.last_periods"),
    "drift shares": ("drift.warn_share", 0.6, "0 <= warn_share < error_share <= 1"),
    "empty current window": ("drift.current_periods", 0, "an integer >= 1"),
    "drift judged on no rows": ("drift.min_rows", 0, "an integer >= 1"),
    "scores schema": ("scores.table", "features.churn_scores", "predictions.<table>"),
    "cron": ("retraining.cron", "every night", "a cron string"),
    "policy": ("retraining.policy", "weekly", "'on_drift', 'on_new_data' or 'cron'"),
    "horizon": ("label_horizon", "30 days", "e.g. 0d, 30d, 2w"),
}


def attributes_name(path: str, value) -> str:
    return value if path == "name" else "churn"


FIELD_OF = {"nested key misspelt": "gate.flor", "gate bound against the direction": "gate.floor"}
FIELD_OF |= {"fraction with a time column": "holdout.fraction", "drift shares": "drift.error_share"}


@pytest.mark.parametrize("mistake", MISTAKES, ids=list(MISTAKES))
def test_each_bad_field_is_refused_naming_file_model_field_and_what_is_allowed(project, mistake):
    path, value, allowed = MISTAKES[mistake]
    declared = declare(project.project_dir, "churn", with_change(path, value))

    with pytest.raises(DeclarationError) as refused:
        load_project(project, COMPONENT_TYPES)

    message = str(refused.value)
    field = FIELD_OF.get(mistake, path)
    model = f", model {attributes_name(path, value)!r}"
    assert message.startswith(f"{declared} (document 1{model}): field {field}: "), message
    if allowed:
        assert f"allowed: {allowed}" in message, message


def test_a_features_relation_missing_from_the_manifest_is_refused_listing_the_candidates(
    project,
):
    declared = declare(
        project.project_dir, "churn", with_change("features", "features.customer_snapshot")
    )

    with pytest.raises(DeclarationError) as refused:
        load_project(project, COMPONENT_TYPES)

    assert str(refused.value) == (
        f"{declared} (document 1, model 'churn'): field features: 'features.customer_snapshot' "
        "is not a dbt model in the manifest; allowed: features.customer_snapshots, "
        "features.daily_weather"
    )


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("id_column", "customer"),
        ("label", "churn"),
        ("columns.numeric", ["recency_days", "spend_120d"]),
        ("drift.exclude", ["tenure"]),
    ],
)
def test_a_column_missing_from_the_features_model_is_refused_naming_it_and_the_columns(
    project, path, value
):
    declared = declare(project.project_dir, "churn", with_change(path, value))

    with pytest.raises(DeclarationError) as refused:
        load_project(project, COMPONENT_TYPES)

    message = str(refused.value)
    missing = value[-1] if isinstance(value, list) else value
    assert message.startswith(
        f"{declared} (document 1, model 'churn'): field {path}: {missing} not a column of "
        "features.customer_snapshots in the dbt manifest; allowed: customer_id, snapshot_date,"
    ), message


def test_a_regression_declaration_loads_as_a_regression_problem_gated_by_a_ceiling(project):
    attributes = with_change("task", "regression")
    attributes["metrics"] = {"primary": "rmse", "report": ["rmse", "mae"]}
    attributes["families"] = ["ridge"]
    attributes["gate"] = {"metric": "rmse", "ceiling": 3.0, "tolerance": 0.1}
    attributes["scores"] = {"score_column": "predicted_value"}
    declare(project.project_dir, "churn", attributes)

    (component,) = load_project(project, COMPONENT_TYPES).components

    problem = component.spec.problem
    assert (problem.task, problem.primary_metric, problem.families) == (
        "regression",
        "rmse",
        ("ridge",),
    )
    assert (problem.gate.metric, problem.gate.ceiling, problem.gate.floor) == ("rmse", 3.0, None)
    assert problem.scores.score == "predicted_value"


def test_the_ml_packages_own_refusal_is_reported_by_the_yaml_field(project):
    # ProblemSpec refuses a column that is both numeric and categorical; ModelSpec does
    # not repeat that rule, so the message must still name the field.
    attributes = churn_attributes()
    attributes["columns"]["categorical"] = ["country_code", "age"]
    declared = declare(project.project_dir, "churn", attributes)

    with pytest.raises(DeclarationError) as refused:
        load_project(project, COMPONENT_TYPES)

    assert str(refused.value).startswith(
        f"{declared} (document 1, model 'churn'): field attributes: numeric and categorical "
        "both list ['age']"
    ), str(refused.value)


def test_every_numeric_field_of_a_declaration_may_be_a_template(project, monkeypatch):
    monkeypatch.setenv("MODEL_TEST_FOLDS", "4")
    attributes = churn_attributes()
    attributes["tuning"]["folds"] = "{{ env('MODEL_TEST_FOLDS') }}"
    attributes["deployment"] = {"canary_rows": "{{ env('MODEL_TEST_CANARY', '50') }}"}
    attributes["drift"]["reference_periods"] = "{{ env('MODEL_TEST_REFERENCE', '3') }}"
    declare(project.project_dir, "churn", attributes)

    (component,) = load_project(project, COMPONENT_TYPES).components

    spec = component.spec
    assert (spec.tuning.folds, spec.deployment.canary_rows, spec.drift.reference_periods) == (
        4,
        50,
        3,
    )


# --- a second model beside churn -----------------------------------------------------------

ORDER_VALUE_SQL = """\
with snapshots as (select * from {{ ref('customer_snapshots') }})

select
    customer_id,
    snapshot_date,
    orders_90d,
    spend_90d,
    tickets_90d,
    segment,
    open_tickets > 0 as has_open_ticket
from snapshots
"""
ORDER_VALUE_COLUMNS = [
    "customer_id",
    "snapshot_date",
    "orders_90d",
    "spend_90d",
    "tickets_90d",
    "segment",
    "has_open_ticket",
]


def project_with_sql(tmp_path: Path, settings: Settings, sql: str, name: str) -> Settings:
    """A project folder holding the example's dbt models plus one SQL features model
    and its YAML, parsed by dbt into the folder's own manifest: SQL and YAML, no Python."""
    project_dir = tmp_path / "own_project"
    (project_dir / "defs").mkdir(parents=True)
    models = project_dir / PROJECT_DBT_MODELS
    shutil.copytree(DEFAULT_PROJECT_DIR / PROJECT_DBT_MODELS, models)
    (models / "features" / f"{name}.sql").write_text(sql)
    columns = [{"name": c, "description": f"{c} at the snapshot."} for c in ORDER_VALUE_COLUMNS]
    described = {
        "name": name,
        "description": "One row per customer per snapshot.",
        "columns": columns,
    }
    document = yaml.safe_dump({"version": 2, "models": [described]})
    (models / "features" / f"{name}.yml").write_text(document)
    own = replace(settings, project_dir=project_dir)
    parse_project(own.project_dir)
    return own


def test_a_second_model_from_sql_and_yaml_only_loads_beside_churn_owning_its_own_names(
    tmp_path, settings
):
    project = project_with_sql(tmp_path, settings, ORDER_VALUE_SQL, "customer_order_values")
    declare(project.project_dir, "churn", churn_attributes())
    second = declare(
        project.project_dir,
        "open_tickets",
        {
            "name": "open_tickets",
            "features": "features.customer_order_values",
            "id_column": "customer_id",
            "time_column": "snapshot_date",
            "label": "has_open_ticket",
            "columns": {
                "numeric": ["orders_90d", "spend_90d", "tickets_90d"],
                "categorical": ["segment"],
            },
            "gate": {"floor": 0.6},
        },
    )

    loaded = load_project(project, COMPONENT_TYPES)

    assert not list(project.project_dir.rglob("*.py")) and second.is_file()
    found = names(runnable(loaded.defs, project))
    churn = {n for kind in found.values() for n in kind if "churn" in n.split("/")[0]}
    other = {n for kind in found.values() for n in kind if n.startswith("open_tickets")}
    assert {"open_tickets/candidate", "open_tickets__retrain"} <= other
    assert {"open_tickets__nightly_retrain", "open_tickets__drift_retraining"} <= other
    assert churn.isdisjoint(other) and {"churn/candidate", "churn__retrain"} <= churn
    assert "features/customer_order_values:open_tickets_feature_drift" in found["checks"]
    graph = runnable(loaded.defs, project).resolve_asset_graph()
    assert graph.get(dg.AssetKey(["open_tickets", "training_set"])).parent_keys == {
        dg.AssetKey(["features", "customer_order_values"])
    }


def test_the_tasks_a_declaration_may_name_are_exactly_the_ml_packages_tasks():
    assert set(typing.get_args(model_spec.Task)) == set(TASKS)


def resolved_churn_attributes() -> dict:
    """The churn declaration with its templated sections replaced by plain values."""
    plain = {"tuning": {}, "gate": {"floor": 0.75}, "retraining": {}, "drift": {}}
    return churn_attributes() | plain


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("retraining", "drift_cooldown", "soon"),
        ("retraining", "drift_cooldown", "6 hours"),
        ("freshness", "max_training_data_age", "30"),
    ],
)
def test_a_duration_that_is_not_one_is_refused_naming_the_field(section, field, value):
    attributes = resolved_churn_attributes()
    attributes[section] = {field: value}

    with pytest.raises((pydantic.ValidationError, FieldError), match=field):
        ModelSpec.model_validate(attributes)


def test_a_model_may_promise_nothing_about_its_training_data_age():
    attributes = resolved_churn_attributes()
    attributes["freshness"] = {"max_training_data_age": None}

    assert ModelSpec.model_validate(attributes).freshness.max_age_s is None
