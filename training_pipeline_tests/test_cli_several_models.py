"""A project with two models: `status`, `rollback`, `lineage` and `retrain` work on the one
`--model` names (default: the only one), and `run` reports each model on its own."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest
from fitted_models import fitted, register
from project_folders import project_folder

from training_pipeline.cli import main
from training_pipeline.definitions import build_definitions
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.model_summary import NOT_REACHED, SKIPPED, model_lines, run_outcome
from training_pipeline.runner import model_selection
from training_pipeline.settings import DEFAULT_PROJECT_DIR, Settings
from training_pipeline.spec.model_skeleton import model_skeleton, skeleton_values
from training_pipeline.spec.model_spec import ModelSpec

pytestmark = pytest.mark.integration  # the CLI on real registries and Dagster homes

FEATURES = "features.customer_snapshots"
MODELS = ("churn", "late_orders")
CHOICES = "several models: churn, late_orders; pass --model"


def declare(project_dir: Path, name: str) -> None:
    values = skeleton_values(
        name,
        FEATURES,
        "churned",
        "customer_id",
        time_column="snapshot_date",
        numeric=("recency_days", "orders_30d"),
        categorical=("segment",),
    )
    path = project_dir / "defs" / name / "model" / "defs.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(model_skeleton(values))


@pytest.fixture
def two_models(tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    project_dir = project_folder(tmp_path / "project")
    for name in MODELS:
        declare(project_dir, name)
    # The pipeline's dbt project reads every declared source system: the project declares them.
    for system in DEFAULT_PROJECT_DIR.glob("defs/*/*"):
        if system.name != "model":
            shutil.copytree(system, project_dir / system.relative_to(DEFAULT_PROJECT_DIR))
    monkeypatch.setenv("TRAINING_PIPELINE_PROJECT_DIR", str(project_dir))
    return replace(settings, project_dir=project_dir)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def promoted(registry: ModelRegistry, count: int) -> list[str]:
    versions = [register(registry, fitted()).version for _ in range(count)]
    for version in versions:
        registry.promote(version, actor="ci")
    return versions


@pytest.mark.parametrize("command", [["status"], ["rollback"], ["lineage", "production"]])
def test_without_model_a_two_model_project_is_refused_with_the_choices(capsys, two_models, command):
    code, out, err = run_cli(capsys, *command)

    assert (code, out) == (1, "")
    assert f"training-pipeline {command[0]}: {CHOICES}" in err
    assert not two_models.models_dir.exists()


def test_retrain_without_model_is_refused_before_any_run_starts(capsys, two_models, tmp_path):
    code, _, err = run_cli(capsys, "retrain")

    assert code == 1
    assert f"training-pipeline retrain: {CHOICES}" in err
    code, _, err = run_cli(capsys, "retrain", "--model", "flights")
    assert code == 1
    assert "no model named 'flights'; declared: churn, late_orders" in err


def test_model_routes_status_rollback_and_lineage_to_that_models_registry(capsys, two_models):
    late = ModelRegistry.for_model(two_models.models_dir, "late_orders")
    first, second = promoted(late, 2)

    status = json.loads(run_cli(capsys, "status", "--model", "late_orders", "--json")[1])
    assert status["registry"] == str(two_models.models_dir / "late_orders")
    assert status["production"]["version"] == second
    other = json.loads(run_cli(capsys, "status", "--model", "churn", "--json")[1])
    assert (other["registry"], other["production"]) == (
        str(two_models.models_dir / "churn"),
        None,
    )

    code, out, _ = run_cli(capsys, "rollback", "--model", "late_orders")
    assert code == 0 and f"production is now {first} (was {second})" in out
    assert late.aliases().production == first
    assert not (two_models.models_dir / "churn").exists()

    code, _, err = run_cli(capsys, "lineage", "production", "--model", "churn")
    assert code == 1
    assert f"no model is production in the registry at {two_models.models_dir / 'churn'}" in err


def test_the_only_declared_model_is_the_default(capsys, settings, tmp_path, monkeypatch):
    project_dir = project_folder(tmp_path / "single")
    declare(project_dir, "late_orders")
    monkeypatch.setenv("TRAINING_PIPELINE_PROJECT_DIR", str(project_dir))
    (version,) = promoted(ModelRegistry.for_model(settings.models_dir, "late_orders"), 1)

    code, out, _ = run_cli(capsys, "status", "--json")

    assert code == 0
    assert json.loads(out)["production"]["version"] == version


def test_retrain_of_one_model_runs_its_chain_and_what_feeds_it_only(two_models):
    selected = {k.to_user_string() for k in model_selection(build_definitions(two_models), "churn")}

    parts = ("training_set", "candidate", "validation", "production", "scores")
    assert {f"churn/{part}" for part in parts} | {"features/customer_snapshots"} <= selected
    assert not [key for key in selected if key.startswith("late_orders/")]


# --- the run summary ----------------------------------------------------------------------


def observation(name: str, **metadata) -> dg.AssetObservation:
    return dg.AssetObservation(asset_key=dg.AssetKey([name, "candidate"]), metadata=metadata)


def gate(name: str, passed: bool) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey([name, "validation"]), check_name="passes_gate", passed=passed
    )


def test_a_models_run_outcome_is_its_gate_verdict_or_why_it_has_none():
    candidate = dg.AssetKey(["churn", "candidate"])
    skipped = [observation("churn", skipped="training set abc unchanged")]

    assert run_outcome("churn", skipped, [], []) == SKIPPED
    assert run_outcome("churn", [], [candidate], [gate("churn", True)]) == "gate passed"
    assert run_outcome("churn", [], [candidate], [gate("churn", False)]).startswith("gate FAILED")
    assert run_outcome("churn", [], [candidate], []) == "candidate trained, not gated in this run"
    # Another model's events say nothing about this one.
    assert run_outcome("late_orders", skipped, [candidate], [gate("churn", True)]) == NOT_REACHED


def test_the_summary_shows_each_models_production_primary_metric_and_outcome(settings):
    (version,) = promoted(ModelRegistry.for_model(settings.models_dir, "churn"), 1)
    specs = {
        name: ModelSpec.model_validate(
            {"name": name, "features": FEATURES, "id_column": "customer_id", "label": "y"}
            | {"time_column": "d", "gate": {"floor": 0.7}}
        )
        for name in MODELS
    }

    lines = model_lines(settings, specs, {"churn": SKIPPED, "late_orders": NOT_REACHED})

    assert lines == [
        f"production model churn: {version} (logistic_regression), holdout roc_auc 0.812",
        f"  this run: {SKIPPED}",
        f"  model registry: {settings.models_dir / 'churn'}",
        "production model late_orders: none",
        f"  this run: {NOT_REACHED}",
        f"  model registry: {settings.models_dir / 'late_orders'}",
    ]
