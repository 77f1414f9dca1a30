"""A rerun with no new data trains nothing: same training set and spec, no new version,
and the reason is recorded where a person looks; automation asks only for a new one."""

from __future__ import annotations

import dagster as dg
import pytest
from churn_model import NAME, key, step
from synthetic_churn import churn_snapshots
from test_gate_in_the_graph import FAST, exported, graph_on

from training_pipeline.assets.model_freshness import candidate_condition
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.resources import build_resources
from training_pipeline.settings import Settings


def run(settings: Settings, dataset, force: bool = False) -> dg.ExecuteInProcessResult:
    budget = FAST["ops"][step("candidate")]["config"]
    config = {"ops": {step("candidate"): {"config": budget | {"force": force}}}}
    result = dg.materialize(
        graph_on(dataset), resources=build_resources(settings), run_config=config
    )
    assert result.success
    return result


def materialized(result: dg.ExecuteInProcessResult) -> set[dg.AssetKey]:
    return {e.asset_key for e in result.get_asset_materialization_events()}


def skip_reasons(result: dg.ExecuteInProcessResult) -> list[str]:
    return [
        e.event_specific_data.asset_observation.metadata["skipped"].value
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    ]


@pytest.fixture
def dataset(settings: Settings):
    return exported(churn_snapshots(n_customers=300, n_snapshots=20, seed=4), settings)


def test_a_rerun_with_no_new_data_trains_nothing_and_says_why(settings, dataset):
    registry = ModelRegistry.for_model(settings.models_dir, NAME)
    first = run(settings, dataset)
    (trained,) = registry.versions()
    assert {key("candidate"), key("validation"), key("production")} <= materialized(first)

    again = run(settings, dataset)

    assert [v.version for v in registry.versions()] == [trained.version]
    assert materialized(again) == {key("training_set")}
    skipped = {e.step_key for e in again.all_events if e.event_type_value == "STEP_SKIPPED"}
    assert {step("validation"), step("production")} <= skipped
    (reason,) = skip_reasons(again)
    assert f"unchanged since {trained.version} (gate passed); nothing trained" in reason
    assert reason.startswith(f"training set {dataset.fingerprint[:12]} and spec ")


def test_force_trains_on_an_unchanged_training_set_and_new_data_trains_without_it(
    settings, dataset
):
    registry = ModelRegistry.for_model(settings.models_dir, NAME)
    run(settings, dataset)

    run(settings, dataset, force=True)
    assert len(registry.versions()) == 2

    newer = exported(churn_snapshots(n_customers=300, n_snapshots=21, seed=4), settings)
    assert newer.fingerprint != dataset.fingerprint
    assert key("candidate") in materialized(run(settings, newer))
    assert len(registry.versions()) == 3


def test_automation_asks_for_a_candidate_only_when_the_training_set_or_spec_changed():
    version = {"data": "a"}

    @dg.asset(key=["m", "training_set"])
    def training_set() -> dg.Output[int]:
        return dg.Output(1, data_version=dg.DataVersion(version["data"]))

    def candidate_with(spec_hash: str) -> dg.AssetsDefinition:
        @dg.asset(
            key=["m", "candidate"],
            deps=[training_set],
            code_version=spec_hash,
            automation_condition=candidate_condition(),
        )
        def candidate() -> int:
            return 2

        return candidate

    with dg.instance_for_test() as instance:
        assert dg.materialize([training_set, candidate_with("s1")], instance=instance).success
        cursor = None
        requested = []
        for data, spec_hash in (("a", "s1"), ("a", "s1"), ("b", "s1"), ("b", "s1"), ("b", "s2")):
            version["data"] = data
            assert dg.materialize([training_set], instance=instance).success
            evaluated = dg.evaluate_automation_conditions(
                defs=[training_set, candidate_with(spec_hash)], instance=instance, cursor=cursor
            )
            cursor = evaluated.cursor
            requested.append(evaluated.total_requested)
    assert requested == [0, 0, 1, 0, 1]
