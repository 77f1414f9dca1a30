"""A production artifact that fails verification: reported, alerted, and rolled back from
automatically to the last earlier production model that verifies."""

from __future__ import annotations

import json

import dagster as dg
import pytest
from churn_model import NAME, key, step
from fitted_models import FAMILIES, fitted, flip_a_byte, register, truncate
from synthetic_churn import churn_snapshots
from test_gate_in_the_graph import FAST, exported, graph_on

from training_pipeline.alerts import alert_log_path
from training_pipeline.cli import main
from training_pipeline.components.models import declared_models
from training_pipeline.ml.recovery import (
    VERIFICATION_ROLLBACK,
    NoVerifiedModelError,
    ensure_verified_production,
    production_check,
)
from training_pipeline.ml.registry import AliasError, Aliases, ModelRegistry
from training_pipeline.model_summary import NOT_REACHED, model_lines
from training_pipeline.resources import build_resources
from training_pipeline.settings import Settings


@pytest.fixture
def registry(settings: Settings) -> ModelRegistry:
    return ModelRegistry.for_model(settings.models_dir, NAME)


@pytest.fixture
def three_promoted(registry: ModelRegistry) -> list[str]:
    """Three versions promoted in turn: the last is production."""
    versions = [register(registry, fitted(f), family=f).version for f in FAMILIES]
    for version in versions:
        registry.promote(version, actor="ci")
    return versions


# --- the mechanism, on a registry ----------------------------------------------------------


def test_a_flipped_byte_in_the_production_artifact_fails_verification(registry, three_promoted):
    assert production_check(registry).verified is True
    flip_a_byte(registry.get(three_promoted[-1]).artifact_path)

    check = production_check(registry)

    assert (check.version, check.verified) == (three_promoted[-1], False)
    assert "corrupt or truncated" in check.reason and "expected sha256" in check.reason


def test_production_falls_back_to_the_last_verified_version_recorded_as_a_rollback(
    registry, three_promoted
):
    flip_a_byte(registry.get(three_promoted[-1]).artifact_path)

    fallback = ensure_verified_production(registry, actor="dagster run r1")

    assert (fallback.failed, fallback.restored) == (three_promoted[-1], three_promoted[1])
    assert registry.aliases() == Aliases(three_promoted[1], three_promoted[0])
    last = registry.history()[-1]
    assert (last.action, last.actor) == ("rollback", "dagster run r1")
    assert last.reason.startswith(VERIFICATION_ROLLBACK) and "corrupt or truncated" in last.reason
    assert ensure_verified_production(registry) is None  # verified now: nothing more to do


def test_a_rollback_judged_on_a_version_no_longer_in_production_changes_nothing(
    registry, three_promoted
):
    # Regression: a run that found v3 damaged could roll back over a healthy model that
    # another run promoted meanwhile.
    fresh = register(registry, fitted(FAMILIES[0]), family=FAMILIES[0]).version
    registry.promote(fresh, actor="another run")

    with pytest.raises(AliasError, match=f"no longer {three_promoted[-1]}"):
        registry.rollback(to=three_promoted[0], replacing=three_promoted[-1])

    assert registry.aliases().production == fresh


def test_a_damaged_previous_version_is_skipped_for_an_earlier_one(registry, three_promoted):
    flip_a_byte(registry.get(three_promoted[-1]).artifact_path)
    truncate(registry.get(three_promoted[1]).artifact_path)

    fallback = ensure_verified_production(registry)

    assert fallback.restored == three_promoted[0]
    assert registry.aliases().production == three_promoted[0]


def test_a_version_taken_out_of_production_by_a_rollback_is_never_restored(registry):
    first, withdrawn, last = (register(registry, fitted(f), family=f).version for f in FAMILIES)
    registry.promote(first)
    registry.promote(withdrawn)
    registry.rollback(reason="smoke test failed")  # `withdrawn` left production for a reason
    registry.promote(last)
    flip_a_byte(registry.get(last).artifact_path)

    assert ensure_verified_production(registry).restored == first


def test_with_no_verified_version_left_it_fails_saying_so_and_what_to_do(registry):
    only = register(registry, fitted()).version
    spare = register(registry, fitted("random_forest")).version  # never in production
    registry.promote(only)
    flip_a_byte(registry.get(only).artifact_path)

    with pytest.raises(NoVerifiedModelError) as refused:
        ensure_verified_production(registry)

    message = str(refused.value)
    assert f"production model {only} failed verification" in message
    assert "no earlier production version verifies" in message
    assert "training-pipeline rollback --to VERSION" in message and spare in message
    assert "restore the registry directory" in message
    assert registry.aliases() == Aliases(only, None)  # nothing was changed


# --- `training-pipeline status` ------------------------------------------------------------


def test_status_json_reports_a_production_artifact_that_fails_verification(
    capsys, registry, three_promoted
):
    """Regression: `status` showed a tampered production model with no warning."""
    flip_a_byte(registry.get(three_promoted[-1]).artifact_path)

    code = main(["status", "--model", "churn", "--json"])

    captured = capsys.readouterr()
    status = json.loads(captured.out)
    assert code == 1
    assert status["schema_version"] == 1
    assert status["production"]["version"] == three_promoted[-1]
    assert status["production_verified"] is False
    assert "corrupt or truncated" in status["production_verification_error"]
    assert f"production model {three_promoted[-1]} FAILED verification" in captured.err


def test_status_text_says_loudly_that_production_failed_verification(
    capsys, registry, three_promoted
):
    truncate(registry.get(three_promoted[-1]).artifact_path)

    code = main(["status", "--model", "churn"])

    out = capsys.readouterr().out
    assert code == 1
    lines = out.splitlines()
    assert lines[1] == f"production: {three_promoted[-1]} ({FAMILIES[-1]})"
    assert lines[2].startswith("  !! FAILED VERIFICATION: model version")
    assert "rollback --to VERSION" in lines[3]


def test_status_of_a_healthy_production_says_it_verified(capsys, registry, three_promoted):
    assert main(["status", "--model", "churn", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["production_verified"], status["production_verification_error"]) == (True, None)


def test_the_run_summary_says_loudly_that_production_failed_verification(
    settings, registry, three_promoted
):
    flip_a_byte(registry.get(three_promoted[-1]).artifact_path)

    lines = model_lines(settings, {NAME: declared_models(settings)[NAME]}, {NAME: NOT_REACHED})

    assert lines[0].startswith(f"production model {NAME}: {three_promoted[-1]}")
    assert lines[1].startswith(f"  !! production model {three_promoted[-1]} FAILED verification")


# --- inside a run ----------------------------------------------------------------------------

# Each run trains, though the training set repeats: validation is what these tests watch.
FORCED = {"config": FAST["ops"][step("candidate")]["config"] | {"force": True}}
LENIENT = {
    "ops": {
        step("candidate"): FORCED,
        step("validation"): {"config": {"tolerance": 1.0}},
    }
}


def run_graph(settings: Settings, dataset, tags=None) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        graph_on(dataset),
        resources=build_resources(settings),
        run_config=LENIENT,
        raise_on_error=False,
        tags=tags,
    )


# The forced retrain on the same rows is what the drift sensor launches: only a reason
# like that lets a model no better than the champion replace it.
DRIFT = {"training_pipeline/trigger": "feature drift ERROR (share 0.6)"}


@pytest.fixture
def dataset(settings):
    return exported(churn_snapshots(n_customers=400, n_snapshots=20, seed=3), settings)


@pytest.mark.slow
def test_a_run_rolls_back_from_a_tampered_production_alerts_and_goes_on(
    settings, registry, dataset
):
    """Regression: every run failed at validation until someone rolled back by hand."""
    assert run_graph(settings, dataset).success
    trusted = registry.aliases().production
    tampered = register(registry, fitted(), metrics=dict(registry.get(trusted).metrics)).version
    registry.promote(tampered)
    flip_a_byte(registry.get(tampered).artifact_path)

    result = run_graph(settings, dataset, DRIFT)

    assert result.success, [e.message for e in result.all_events if e.is_failure]
    rollback = next(c for c in registry.history() if c.action == "rollback")
    assert (rollback.before.production, rollback.after.production) == (tampered, trusted)
    assert rollback.reason.startswith(VERIFICATION_ROLLBACK)
    (validation,) = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.asset_key == key("validation")
    ]
    assert validation.metadata["champion"].value == trusted
    assert f"{tampered} failed verification" in validation.metadata["production_rolled_back"].value
    lines = [json.loads(line) for line in alert_log_path(settings).read_text().splitlines()]
    # The run goes on and promotes its candidate: that is alerted too.
    (alert,) = [line for line in lines if line["kind"] != "model_promoted"]
    assert "model_promoted" in [line["kind"] for line in lines]
    assert (alert["kind"], alert["run_id"]) == ("production_failed_verification", result.run_id)
    assert tampered in alert["message"] and trusted in alert["message"]
    assert registry.aliases().production not in (tampered, None)  # the new model deployed


@pytest.mark.slow
def test_a_run_with_nothing_verified_to_fall_back_to_fails_saying_what_to_do(
    settings, registry, dataset
):
    assert run_graph(settings, dataset).success
    only = registry.aliases().production
    flip_a_byte(registry.get(only).artifact_path)

    result = run_graph(settings, dataset)

    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert failure.step_key == step("validation")
    message = failure.event_specific_data.error.message
    assert "no earlier production version verifies" in message
    assert "training-pipeline rollback --to VERSION" in message
    assert registry.aliases().production == only
