"""`training-pipeline new-model`: a declaration with every field of ModelSpec, its default
and a note, written where the loader finds it, never over an existing file."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from project_folders import project_folder
from pydantic import BaseModel

from training_pipeline.cli import main
from training_pipeline.components import COMPONENT_TYPES
from training_pipeline.components.loader import load_project
from training_pipeline.components.trained_model import TrainedModel
from training_pipeline.definitions import build_definitions
from training_pipeline.settings import DEFAULT_PROJECT_DIR, Settings
from training_pipeline.spec import model_skeleton
from training_pipeline.spec.model_skeleton import (
    SkeletonError,
    attributes,
    skeleton_values,
)
from training_pipeline.spec.model_spec import ModelSpec

# A features model the dbt manifest holds, with columns of each role.
FEATURES = "features.customer_snapshots"
ROLES = ["--numeric", "recency_days,orders_30d,age", "--categorical", "segment,country_code"]


def leaf_fields(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Dotted paths of every field that holds a value, read from the pydantic model."""
    found = set()
    for name, info in model.model_fields.items():
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            found |= leaf_fields(type(default), f"{prefix}{name}.")
        else:
            found.add(f"{prefix}{name}")
    return found


def leaf_paths(document: dict, prefix: str = "") -> set[str]:
    found = set()
    for key, value in document.items():
        if isinstance(value, dict) and value:
            found |= leaf_paths(value, f"{prefix}{key}.")
        else:
            found.add(f"{prefix}{key}")
    return found


def binary_values() -> dict:
    return skeleton_values("late_orders", FEATURES, "churned", "customer_id", time_column="d")


@pytest.fixture
def project(tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    project_dir = project_folder(tmp_path / "project")
    # The pipeline's dbt project reads every declared source system: the project declares them.
    for system in DEFAULT_PROJECT_DIR.glob("defs/*/*"):
        if system.name != "model":
            shutil.copytree(system, project_dir / system.relative_to(DEFAULT_PROJECT_DIR))
    monkeypatch.setenv("TRAINING_PIPELINE_PROJECT_DIR", str(project_dir))
    return replace(settings, project_dir=project_dir)


def new_model(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["new-model", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_skeleton_spells_out_every_field_of_the_spec_with_its_default():
    text = model_skeleton.model_skeleton(binary_values())

    document = yaml.safe_load(text)
    assert document["type"] == "training_pipeline.components.TrainedModel"
    assert leaf_paths(document["attributes"]) == leaf_fields(ModelSpec)
    written = ModelSpec.model_validate(document["attributes"])
    defaults = ModelSpec.model_validate(attributes(binary_values()))
    assert written == defaults
    assert (written.tuning.trials, written.drift.error_share) == (50, 0.5)


def test_every_line_of_the_skeleton_carries_a_note():
    lines = model_skeleton.model_skeleton(binary_values()).splitlines()[2:]

    assert lines and all(" # " in line and line.split(" # ", 1)[1].strip() for line in lines)
    assert any("null = roc_auc; one of roc_auc, pr_auc" in line for line in lines)


def test_a_spec_field_without_a_note_stops_the_skeleton(monkeypatch):
    monkeypatch.delitem(model_skeleton.NOTES, "tuning.seed")

    with pytest.raises(KeyError, match="'tuning.seed' has no note"):
        model_skeleton.model_skeleton(binary_values())


def test_a_regression_skeleton_needs_its_gate_ceiling_and_then_validates():
    with pytest.raises(SkeletonError, match="ceiling on rmse.*pass --gate-bound"):
        skeleton_values("temps", "features.days", "temp_next", "day", task="regression")

    values = skeleton_values(
        "temps", "features.days", "temp_next", "day", task="regression", gate_bound=2.9
    )
    document = yaml.safe_load(model_skeleton.model_skeleton(values))
    spec = ModelSpec.model_validate(document["attributes"])
    assert (spec.task, spec.gate_metric, spec.gate.ceiling, spec.gate.floor) == (
        "regression",
        "rmse",
        2.9,
        None,
    )


def test_without_a_time_column_the_skeleton_holds_out_a_random_fraction():
    values = skeleton_values("late_orders", FEATURES, "churned", "customer_id")

    spec = ModelSpec.model_validate(
        yaml.safe_load(model_skeleton.model_skeleton(values))["attributes"]
    )
    assert (spec.time_column, spec.holdout.fraction, spec.holdout_periods) == (None, 0.2, None)


def test_new_model_writes_a_declaration_that_loads_into_the_models_assets(capsys, project):
    code, out, _ = new_model(
        capsys,
        "late_orders",
        "--features",
        FEATURES,
        "--label",
        "churned",
        "--id-column",
        "customer_id",
        "--time-column",
        "snapshot_date",
        *ROLES,
    )

    path = project.project_dir / "defs" / "late_orders" / "model" / "defs.yaml"
    assert code == 0 and f"wrote {path}" in out
    loaded = load_project(project, COMPONENT_TYPES)
    (component,) = [c for c in loaded.components if isinstance(c, TrainedModel)]
    assert component.spec.columns.categorical == ("segment", "country_code")
    graph = build_definitions(project).resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    parts = ("training_set", "candidate", "validation", "production", "scores")
    assert {f"late_orders/{part}" for part in parts} <= keys


def test_new_model_refuses_to_overwrite_a_declaration(capsys, project):
    path = project.project_dir / "defs" / "late_orders" / "model" / "defs.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("# mine\n")

    code, out, err = new_model(
        capsys, "late_orders", "--features", FEATURES, "--label", "churned", "--id-column", "id"
    )

    assert (code, out) == (1, "")
    assert f"{path} exists; nothing written" in err
    assert path.read_text() == "# mine\n"


def test_new_model_names_the_field_a_bad_option_breaks_and_writes_nothing(capsys, project):
    code, _, err = new_model(
        capsys, "Late-Orders", "--features", FEATURES, "--label", "churned", "--id-column", "id"
    )

    assert code == 2
    assert "new-model Late-Orders: field name: 'Late-Orders' does not match" in err
    assert not (project.project_dir / "defs" / "Late-Orders").exists()
