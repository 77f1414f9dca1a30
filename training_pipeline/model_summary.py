"""What a run did to each declared model, as the lines `run` and `retrain` print.

Per model: its production version and that version's holdout value of the model's own
primary metric (read from its spec, so a regression model reports rmse, not ROC AUC),
and what this run decided — the gate's verdict, or why nothing was trained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import dagster as dg

from training_pipeline.assets.model_gate import GATE_CHECK
from training_pipeline.assets.model_training import NO_DATA
from training_pipeline.ml.recovery import production_check
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.registries import registry_of
from training_pipeline.settings import Settings
from training_pipeline.spec.model_spec import ModelSpec

SKIPPED = "skipped: training set unchanged"
WAITING = "skipped: no labelled rows yet"
NOT_REACHED = "not trained in this run"


def run_outcome(
    name: str,
    observations: Sequence[dg.AssetObservation],
    materialized: Sequence[dg.AssetKey],
    evaluations: Sequence[dg.AssetCheckEvaluation],
) -> str:
    """The gate's verdict on the model ``name`` in one run, or why it has none.

    A candidate that found its training set unchanged records an observation with a
    ``skipped`` reason instead of materializing (assets/model_freshness.py).
    """
    candidate, validation = dg.AssetKey([name, "candidate"]), dg.AssetKey([name, "validation"])
    skipped = [o for o in observations if o.asset_key == candidate and "skipped" in o.metadata]
    if skipped:
        return WAITING if NO_DATA in skipped[-1].metadata else SKIPPED
    gate = [e for e in evaluations if e.asset_key == validation and e.check_name == GATE_CHECK]
    if gate:
        return "gate passed" if gate[-1].passed else "gate FAILED: candidate not deployed"
    if candidate in materialized:
        return "candidate trained, not gated in this run"
    return NOT_REACHED


def result_outcomes(result: dg.ExecuteInProcessResult, names: Sequence[str]) -> dict[str, str]:
    """``run_outcome`` of every model ``names`` lists, from an in-process run's events."""
    observations = [
        e.asset_observation_data.asset_observation for e in result.get_asset_observation_events()
    ]
    materialized = [e.asset_key for e in result.get_asset_materialization_events()]
    evaluations = list(result.get_asset_check_evaluations())
    return {n: run_outcome(n, observations, materialized, evaluations) for n in names}


def model_lines(
    settings: Settings, specs: Mapping[str, ModelSpec], outcomes: Mapping[str, str]
) -> list[str]:
    """Per model: production version and primary metric, this run's outcome, registry."""
    lines = []
    for name, spec in specs.items():
        registry = registry_of(settings, name)
        lines += [*_production_lines(registry, spec), f"  this run: {outcomes[name]}"]
        lines.append(f"  model registry: {registry.root}")
    return lines


def _production_lines(registry: ModelRegistry, spec: ModelSpec) -> list[str]:
    production = registry.production()
    if production is None:
        return [f"production model {spec.name}: none"]
    metric = spec.primary_metric
    value = production.metrics.get(metric)
    shown = f"holdout {metric} {value:.3f}" if value is not None else f"{metric} not recorded"
    lines = [f"production model {spec.name}: {production.version} ({production.family}), {shown}"]
    check = production_check(registry)
    if not check.verified:
        lines.append(
            f"  !! production model {production.version} FAILED verification: "
            f"{check.reason}; the next run rolls back to the last earlier production model "
            "that verifies"
        )
    return lines
