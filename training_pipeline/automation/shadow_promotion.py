"""A model's shadow promotion sensor: with ``serve.min_shadow_period``, the promotion a
too-short shadow period held runs again once the period has passed, once per candidate
(the decision: ``serving/shadow.promotion_due``)."""

import json

import dagster as dg

from training_pipeline.assets.model_names import DeclaredModel
from training_pipeline.ml.registry import utc_now
from training_pipeline.resources import ModelStoreResource
from training_pipeline.serving.shadow import (
    AwaitingPromotion,
    promotion_due,
    shadow_candidate,
    shadowed_since,
)

# The cursor remembers the versions whose promotion was run again; the run key makes a
# second request for one a no-op anyway, so only the newest few are worth keeping.
REMEMBERED = 20


def awaiting_promotion(model: DeclaredModel, store: ModelStoreResource) -> AwaitingPromotion:
    registry = model.registry(store)
    versions = registry.versions()
    candidate = shadow_candidate(versions, registry.aliases().production)
    if candidate is None:
        return AwaitingPromotion(None, None, None, None)
    return AwaitingPromotion(
        candidate=candidate,
        newest=versions[0].version,
        held=registry.promotion_block(candidate),
        since=shadowed_since(model.prediction_logs_dir(store), model.name, candidate),
    )


def run_promotion_again(
    model: DeclaredModel, context: dg.SensorEvaluationContext, store: ModelStoreResource
) -> dg.SensorResult:
    min_shadow_s = model.spec.serve.min_shadow_s
    if min_shadow_s is None:
        return dg.SensorResult(skip_reason="serve.min_shadow_period is not set")
    requested: list[str] = json.loads(context.cursor) if context.cursor else []
    awaiting = awaiting_promotion(model, store)
    due, reason = promotion_due(awaiting, min_shadow_s, utc_now(), requested)
    if not due:
        return dg.SensorResult(skip_reason=reason)
    candidate = str(awaiting.candidate)
    request = dg.RunRequest(
        run_key=f"shadowed-{candidate}",
        asset_selection=[model.production],
        tags={**model.tags, "training_pipeline/trigger": reason},
    )
    cursor = json.dumps([*requested, candidate][-REMEMBERED:])
    return dg.SensorResult(run_requests=[request], cursor=cursor)


def shadow_promotion_sensor(model: DeclaredModel, interval_s: int) -> dg.SensorDefinition:
    def evaluate(
        context: dg.SensorEvaluationContext, model_store: ModelStoreResource
    ) -> dg.SensorResult:
        return run_promotion_again(model, context, model_store)

    return dg.sensor(
        name=model.job_name("shadow_promotion"),
        target=[model.production],
        minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Runs {model.name}'s promotion again once a candidate it held for "
        f"serve.min_shadow_period ({model.spec.serve.min_shadow_period}) has shadowed "
        "production that long; once per candidate, never past a pin or a rejection.",
    )(evaluate)
