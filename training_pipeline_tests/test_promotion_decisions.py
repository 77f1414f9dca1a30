"""In the asset graph, automation respects a person's decision: a pin holds production,
a rejected version's training set is never promoted again, and every promotion is shown
on the production asset (actor, reason) and alerted."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest
from churn_model import NAME, assets, key, step
from synthetic_churn import churn_snapshots
from test_gate_in_the_graph import exported

from training_pipeline.alerts import alert_log_path
from training_pipeline.ml.datasets import TrainingSet
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.resources import build_resources
from training_pipeline.settings import Settings

pytestmark = pytest.mark.integration  # runs the graph's model half in process

# The gate is not what these tests are about: any challenger passes it.
LENIENT = {
    step("candidate"): {"config": {"n_trials": 2, "timeout_s": 60.0}},
    step("validation"): {"config": {"floor": 0.0, "tolerance": 1.0}},
}


def run(dataset: TrainingSet, settings: Settings, force: bool = False):
    @dg.asset(key=key("training_set"))
    def given_dataset() -> TrainingSet:
        return dataset

    config = {**LENIENT, step("candidate"): {"config": {"n_trials": 2, "force": force}}}
    return dg.materialize(
        [given_dataset, *assets("candidate", "validation", "production")],
        resources=build_resources(settings),
        run_config={"ops": config},
        raise_on_error=False,
    )


def alerts_of(settings: Settings) -> list[dict]:
    path = alert_log_path(settings)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def blocked_observation(result: dg.ExecuteInProcessResult) -> dict:
    (event,) = [
        e for e in result.get_asset_observation_events() if e.asset_key == key("production")
    ]
    return {k: v.value for k, v in event.asset_observation_data.asset_observation.metadata.items()}


@pytest.fixture(scope="module")
def first_promotion(tmp_path_factory) -> tuple[Path, list[TrainingSet], dg.ExecuteInProcessResult]:
    """Three training sets and a first model promoted from the first one.

    Every test starts from that promotion, so its run is made once and each test works on
    a copy of its data directory (``promoted``).
    """
    data_dir = tmp_path_factory.mktemp("promotion") / "data"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRAINING_PIPELINE_DATA_DIR", str(data_dir))
        patch.delenv("TRAINING_PIPELINE_CRM_URL", raising=False)
        patch.delenv("TRAINING_PIPELINE_API_URL", raising=False)
        settings = Settings.from_env()
        datasets = [
            exported(churn_snapshots(n_customers=400, n_snapshots=20, seed=seed), settings)
            for seed in (3, 4, 5)
        ]
        result = run(datasets[0], settings)
    return data_dir, datasets, result


@pytest.fixture
def promoted(first_promotion, settings) -> list[TrainingSet]:
    """The training sets in this test's copy of the first promotion's data directory."""
    template, datasets, result = first_promotion
    assert result.success
    shutil.copytree(template, settings.data_dir)
    return [
        replace(d, path=str(settings.data_dir / Path(d.path).relative_to(template)))
        for d in datasets
    ]


def test_a_promotion_is_shown_on_the_production_asset_and_alerted(
    settings, first_promotion, promoted
):
    result = first_promotion[2]

    assert result.success
    (materialized,) = [
        e for e in result.get_asset_materialization_events() if e.asset_key == key("production")
    ]
    metadata = materialized.materialization.metadata
    version = ModelRegistry.for_model(settings.models_dir, NAME).production().version
    assert metadata["alias_change"].value == "promote"
    assert metadata["actor"].value.startswith("dagster run ")
    assert metadata["production"].value == version
    (alert,) = alerts_of(settings)
    assert (alert["kind"], alert["model"], alert["details"]["production"]) == (
        "model_promoted",
        NAME,
        version,
    )
    assert "roc_auc" in alert["details"]


def test_while_pinned_a_candidate_that_passes_the_gate_is_not_promoted(settings, promoted):
    datasets = promoted
    registry = ModelRegistry.for_model(settings.models_dir, NAME)
    champion = registry.production().version
    registry.pin(reason="quarter-end freeze", actor="carol")

    result = run(datasets[1], settings)

    assert result.success
    assert registry.production().version == champion
    challenger = registry.versions()[0]
    assert challenger.gate["passed"] and challenger.version != champion
    observed = blocked_observation(result)
    assert "pinned" in observed["promotion_blocked"] and "carol" in observed["promotion_blocked"]
    assert alerts_of(settings)[-1]["kind"] == "promotion_blocked"
    assert key("production") not in {e.asset_key for e in result.get_asset_materialization_events()}


def test_a_twin_of_a_rolled_back_version_is_not_promoted_again(settings, promoted):
    datasets = promoted
    registry = ModelRegistry.for_model(settings.models_dir, NAME)
    assert run(datasets[1], settings).success
    rolled_back = registry.production().version
    registry.rollback(reason="complaints", actor="dave")

    # Retrained on the same training set (forced: unforced, nothing would be trained).
    result = run(datasets[1], settings, force=True)

    assert result.success
    twin = registry.versions()[0]
    assert twin.version != rolled_back and twin.gate["passed"]
    assert registry.production().version != twin.version
    observed = blocked_observation(result)
    assert "same training set" in observed["promotion_blocked"]
    assert rolled_back in observed["promotion_blocked"]
    # New data is promoted as usual.
    assert run(datasets[2], settings).success
    assert registry.production().version == registry.versions()[0].version
