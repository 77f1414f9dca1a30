"""A promotion held for a too-short shadow period runs again once the period has passed:
once per candidate, never past a person's decision or a newer version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
from churn_model import LOAD_SETTINGS, churn_spec, key
from serving_models import NAME, churn_registry, servable

from training_pipeline.assets.model_names import DeclaredModel
from training_pipeline.automation.shadow_promotion import shadow_promotion_sensor
from training_pipeline.components.trained_model import model_definitions
from training_pipeline.resources import build_resources
from training_pipeline.serving.shadow import AwaitingPromotion, mark_started, promotion_due
from training_pipeline.settings import Settings
from training_pipeline.spec.model_parts import Serve

SIX_HOURS = 6 * 3600
STARTED = datetime(2026, 3, 1, 6, tzinfo=UTC)
SHADOWING = AwaitingPromotion(candidate="v2", newest="v2", held=None, since=STARTED)


def test_the_promotion_is_due_once_the_shadow_period_has_passed_and_only_once():
    early = promotion_due(SHADOWING, SIX_HOURS, STARTED + timedelta(hours=5), [])
    on_time = promotion_due(SHADOWING, SIX_HOURS, STARTED + timedelta(hours=6), [])
    again = promotion_due(SHADOWING, SIX_HOURS, STARTED + timedelta(hours=9), ["v1", "v2"])

    assert early[0] is False
    assert "shadowed production for 5.0h" in early[1]
    assert on_time[0] is True
    assert again == (False, "the promotion of v2 was already run again once")


def test_a_pin_a_newer_version_or_no_shadowing_yet_keep_the_promotion_waiting():
    late = STARTED + timedelta(days=2)
    pinned = AwaitingPromotion("v2", "v2", "production is pinned to v1 by ana", STARTED)
    newer = AwaitingPromotion("v2", "v3", None, STARTED)
    unshadowed = AwaitingPromotion("v2", "v2", None, None)
    nothing = AwaitingPromotion(None, None, None, None)

    assert promotion_due(pinned, SIX_HOURS, late, []) == (
        False,
        "production is pinned to v1 by ana",
    )
    assert promotion_due(newer, SIX_HOURS, late, []) == (
        False,
        "v3 is newer than v2; its own promotion decides",
    )
    assert "has not served in shadow yet" in promotion_due(unshadowed, SIX_HOURS, late, [])[1]
    assert promotion_due(nothing, SIX_HOURS, late, [])[0] is False


def shadowed_model() -> DeclaredModel:
    serve = Serve(shadow=True, min_shadow_period="6h")
    return DeclaredModel(churn_spec().model_copy(update={"serve": serve}), key("features"))


def test_the_sensor_requests_the_production_asset_once_when_the_shadow_period_ends(
    settings: Settings,
):
    model = shadowed_model()
    store = build_resources(settings)["model_store"]
    registry = churn_registry(settings.models_dir)
    production, candidate = servable(registry), servable(registry)
    registry.promote(production)
    registry.record_gate(candidate, {"passed": True})
    sensor = shadow_promotion_sensor(model, 30)

    def tick(cursor: str | None) -> dg.SensorResult:
        with dg.build_sensor_context(resources={"model_store": store}, cursor=cursor) as context:
            return sensor(context)

    unshadowed = tick(None)
    mark_started(
        settings.prediction_logs_dir, NAME, candidate, datetime.now(UTC) - timedelta(hours=7)
    )
    due = tick(None)
    after = tick(due.cursor)

    assert "has not served in shadow yet" in unshadowed.skip_reason.skip_message
    (request,) = due.run_requests
    assert request.asset_selection == [model.production]
    assert request.run_key == f"shadowed-{candidate}"
    assert after.run_requests in (None, [])
    assert "already run again once" in after.skip_reason.skip_message


def test_only_a_model_with_a_minimum_shadow_period_has_the_sensor(settings: Settings):
    name = f"{NAME}__shadow_promotion"
    plain = model_definitions(churn_spec(), LOAD_SETTINGS)
    shadowed = model_definitions(shadowed_model().spec, LOAD_SETTINGS)

    assert name not in {s.name for s in plain.sensors or ()}
    assert name in {s.name for s in shadowed.sensors or ()}
    # The sensor's target resolves against the model's assets.
    resources = dg.Definitions(resources=build_resources(settings))
    dg.Definitions.validate_loadable(dg.Definitions.merge(shadowed, resources))
