"""The churn example's model as the tests use it: built from examples/defs/churn/model/
defs.yaml exactly as the definitions build it, and picked apart by asset name."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import dagster as dg

from training_pipeline.components import COMPONENT_TYPES
from training_pipeline.components.loader import load_project
from training_pipeline.components.trained_model import TrainedModel, model_definitions
from training_pipeline.settings import DEFAULT_PROJECT_DIR, Settings
from training_pipeline.spec.model_spec import ModelSpec
from training_pipeline_tests.churn_problem import CHURN, declared_problem  # noqa: F401

NAME = "churn"
# Only the sensor interval of the load's settings reaches a model's definitions; paths
# come from the resources of each run.
LOAD_SETTINGS = Settings(data_dir=Path("/nonexistent"), project_dir=DEFAULT_PROJECT_DIR)


def key(part: str) -> dg.AssetKey:
    return dg.AssetKey([NAME, part])


def step(part: str) -> str:
    """The step key of ``churn/<part>`` in a run (what run config and events name)."""
    return f"{NAME}__{part}"


@cache
def churn_definitions() -> dg.Definitions:
    """What the churn model owns (not the sources or other models beside it)."""
    return model_definitions(churn_spec(), LOAD_SETTINGS)


@cache
def churn_spec() -> ModelSpec:
    """The churn model's ``ModelSpec``, as its YAML declares it."""
    (component,) = [
        c
        for c in load_project(LOAD_SETTINGS, COMPONENT_TYPES).components
        if isinstance(c, TrainedModel) and c.spec.name == NAME
    ]
    return component.spec


def asset(part: str) -> dg.AssetsDefinition:
    """The asset ``churn/<part>``."""
    (found,) = [a for a in churn_definitions().assets if key(part) in a.keys]
    return found


def assets(*parts: str) -> list[dg.AssetsDefinition]:
    return [asset(part) for part in parts]


def checks(*names: str) -> list[dg.AssetChecksDefinition]:
    """The model's asset checks named ``names`` (e.g. ``churn_feature_drift``)."""
    return [
        c for c in churn_definitions().asset_checks if any(k.name in names for k in c.check_keys)
    ]


ML_PARTS = ("training_set", "candidate", "validation", "production", "scores")
