"""A declared model's buttons and clocks: its retrain job, nightly schedule and the
drift sensor of the ``on_drift`` policy (a feature drift check at ERROR retrains, once
per drift episode: automation/drift_episodes.py)."""

import time

import dagster as dg

from training_pipeline.assets.model_drift import DRIFT_DATA
from training_pipeline.assets.model_names import DeclaredModel
from training_pipeline.automation.drift_episodes import (
    DriftEvaluation,
    DriftMemory,
    Severity,
    decide,
)
from training_pipeline.automation.shadow_promotion import shadow_promotion_sensor
from training_pipeline.lifecycle_alerts import retrain_alert
from training_pipeline.resources import AlertsResource


def retrain_job(model: DeclaredModel):
    return dg.define_asset_job(
        model.job_name("retrain"),
        selection=dg.AssetSelection.assets(model.training_set).downstream(),
        tags=model.tags,
        description=f"Retrain model {model.name} on the features already in the warehouse: "
        "export, tune, gate, deploy, score. What drift and the nightly schedule launch.",
    )


def nightly_schedule(model: DeclaredModel, job) -> dg.ScheduleDefinition:
    retraining = model.spec.retraining
    return dg.ScheduleDefinition(
        name=model.job_name("nightly_retrain"),
        job=job,
        cron_schedule=retraining.cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING
        if retraining.nightly
        else dg.DefaultScheduleStatus.STOPPED,
        description=f"Retrains model {model.name} at retraining.cron (retraining.nightly "
        "false stops it); the new model still has to pass the gate.",
    )


def _value(evaluation: dg.AssetCheckEvaluation, key: str):
    value = evaluation.metadata.get(key)
    return None if value is None else value.value


def _severity(evaluation: dg.AssetCheckEvaluation) -> Severity:
    if evaluation.passed:
        return "none"
    return "error" if evaluation.severity == dg.AssetCheckSeverity.ERROR else "warn"


def retrain_on_drift(
    model: str,
    check: dg.AssetCheckKey,
    cooldown_s: float,
    context: dg.SensorEvaluationContext,
    alerts: AlertsResource,
) -> dg.SensorResult:
    """At most one retraining per drift episode (``drift_episodes.decide``), alerted."""
    record = context.instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [check]
    ).get(check)
    if record is None:
        return dg.SensorResult(skip_reason="no drift evaluation yet")
    evaluation = record.evaluation
    # A check that is planned or running has no result yet: look again next tick.
    if not isinstance(evaluation, dg.AssetCheckEvaluation):
        return dg.SensorResult(skip_reason="the latest drift check has not finished")
    drift = DriftEvaluation(record.id, _severity(evaluation), _value(evaluation, DRIFT_DATA))
    memory = DriftMemory.from_cursor(context.cursor)
    decision = decide(memory, drift, time.time(), cooldown_s)
    cursor = decision.memory.to_cursor()
    if not decision.retrain:
        return dg.SensorResult(skip_reason=decision.reason, cursor=cursor)
    run_key = f"drift-{record.id}"
    trigger = f"feature drift ERROR (share {_value(evaluation, 'drifted_share')})"
    production = _value(evaluation, "production_model")
    outcome = alerts.deliver_once(retrain_alert(model, trigger, run_key, production))
    if outcome is not None and outcome.error:
        context.log.warning(outcome.error)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=run_key, tags={"training_pipeline/trigger": trigger})],
        cursor=cursor,
    )


def drift_sensor(model: DeclaredModel, job, interval_s: int) -> dg.SensorDefinition:
    """Running under the on_drift policy, stopped otherwise."""
    check = model.feature_drift_check
    cooldown_s = model.spec.retraining.drift_cooldown_s

    def evaluate(context: dg.SensorEvaluationContext, alerts: AlertsResource) -> dg.SensorResult:
        return retrain_on_drift(model.name, check, cooldown_s, context, alerts)

    return dg.sensor(
        name=model.job_name("drift_retraining"),
        job=job,
        minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING
        if model.spec.retraining.policy == "on_drift"
        else dg.DefaultSensorStatus.STOPPED,
        description=f"Retrains model {model.name} when its feature drift check fails at "
        "ERROR (policy on_drift), at most once per drift episode: again only on new data and "
        f"after retraining.drift_cooldown ({model.spec.retraining.drift_cooldown}); the new "
        "model still faces the gate.",
    )(evaluate)


def automation_defs(model: DeclaredModel, interval_s: int) -> dg.Definitions:
    job = retrain_job(model)
    sensors = [drift_sensor(model, job, interval_s)]
    if model.spec.serve.min_shadow_s is not None:  # only a shadow period holds promotions
        sensors.append(shadow_promotion_sensor(model, interval_s))
    return dg.Definitions(
        jobs=[job],
        schedules=[nightly_schedule(model, job)],
        sensors=sensors,
    )
