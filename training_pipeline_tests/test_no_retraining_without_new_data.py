"""A rerun with no new data trains nothing: same training set and spec, no new version,
and the reason is recorded where a person looks; automation asks only for a new one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import churn_model
import dagster as dg
import pytest
from churn_model import NAME, key, step
from fitted_models import fitted, register
from synthetic_churn import churn_snapshots
from test_gate_in_the_graph import FAST, exported, graph_on

from training_pipeline.assets.model_freshness import (
    SPEC_FILE,
    candidate_condition,
    spec_record,
    unchanged_reason,
)
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.resources import build_resources
from training_pipeline.settings import Settings


def run(
    settings: Settings, dataset, force: bool = False, succeeds: bool = True
) -> dg.ExecuteInProcessResult:
    budget = FAST["ops"][step("candidate")]["config"]
    config = {"ops": {step("candidate"): {"config": budget | {"force": force}}}}
    result = dg.materialize(
        graph_on(dataset),
        resources=build_resources(settings),
        run_config=config,
        raise_on_error=succeeds,
    )
    assert result.success == succeeds
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


@pytest.mark.slow
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
    assert f"unchanged since {trained.version} (gate passed, promoted); nothing trained" in reason
    assert reason.startswith(f"training set {dataset.fingerprint[:12]} and spec ")


@pytest.mark.slow
def test_force_trains_on_an_unchanged_training_set_and_new_data_trains_without_it(
    settings, dataset
):
    registry = ModelRegistry.for_model(settings.models_dir, NAME)
    run(settings, dataset)

    forced = run(settings, dataset, force=True, succeeds=False)
    assert len(registry.versions()) == 2
    # Retrained on the same rows for nothing: no better than the champion, so not promoted.
    (gate,) = forced.get_asset_check_evaluations()
    assert not gate.passed and gate.metadata["interval_verdict"].value == "within noise"
    assert "nothing justifies replacing it" in gate.metadata["reasons"].value
    assert registry.production().version == registry.versions()[1].version

    newer = exported(churn_snapshots(n_customers=300, n_snapshots=21, seed=4), settings)
    assert newer.fingerprint != dataset.fingerprint
    assert key("candidate") in materialized(run(settings, newer))
    assert len(registry.versions()) == 3


def test_only_a_settled_version_stops_a_retraining_on_the_same_data(tmp_path):
    """Regression: a rerun after a kill during promotion skipped training and so never
    promoted the model its interrupted run had trained."""
    ticks = iter(range(100))
    start = datetime(2026, 1, 5, tzinfo=UTC)
    registry = ModelRegistry(
        tmp_path / "models", clock=lambda: start + timedelta(minutes=next(ticks))
    )
    spec = churn_model.churn_spec()
    extra = {SPEC_FILE: spec_record(spec)}
    version = register(registry, fitted(), data_fingerprint="f" * 64, extra_files=extra).version

    assert unchanged_reason(registry, "f" * 64, spec.spec_hash) is None  # never gated
    registry.record_gate(version, {"passed": True, "reasons": []})
    assert unchanged_reason(registry, "f" * 64, spec.spec_hash) is None  # never promoted
    registry.promote(version, actor="test")
    assert "(gate passed, promoted)" in unchanged_reason(registry, "f" * 64, spec.spec_hash)
    assert unchanged_reason(registry, "e" * 64, spec.spec_hash) is None  # new data
    assert unchanged_reason(registry, "f" * 64, "0" * 64) is None  # another spec
    refused = register(registry, fitted(), data_fingerprint="f" * 64, extra_files=extra).version
    registry.record_gate(refused, {"passed": False, "reasons": ["below the floor"]})
    assert "(gate failed)" in unchanged_reason(registry, "f" * 64, spec.spec_hash)


@pytest.mark.integration
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
