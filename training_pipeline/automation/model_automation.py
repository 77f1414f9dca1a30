"""A declared model's buttons and clocks: its retrain job, nightly schedule and the
drift sensor of the ``on_drift`` policy (a feature drift check at ERROR retrains)."""

import dagster as dg

from training_pipeline.assets.model_names import DeclaredModel


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


def retrain_on_drift(
    check: dg.AssetCheckKey, context: dg.SensorEvaluationContext
) -> dg.SensorResult:
    """One retraining per feature drift evaluation at ERROR, never twice for the same one."""
    record = context.instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [check]
    ).get(check)
    if record is None or record.id <= int(context.cursor or 0):
        return dg.SensorResult(skip_reason="no new drift evaluation")
    evaluation = record.evaluation
    # A check that is planned or running has no result yet: look again next tick.
    if not isinstance(evaluation, dg.AssetCheckEvaluation):
        return dg.SensorResult(skip_reason="the latest drift check has not finished")
    cursor = str(record.id)
    if evaluation.passed or evaluation.severity != dg.AssetCheckSeverity.ERROR:
        return dg.SensorResult(skip_reason="latest drift evaluation is below ERROR", cursor=cursor)
    share = getattr(evaluation.metadata.get("drifted_share"), "value", "unknown")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"drift-{record.id}",
                tags={"training_pipeline/trigger": f"feature drift ERROR (share {share})"},
            )
        ],
        cursor=cursor,
    )


def drift_sensor(model: DeclaredModel, job, interval_s: int) -> dg.SensorDefinition:
    """Running under the on_drift policy, stopped otherwise."""
    check = model.feature_drift_check

    def evaluate(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return retrain_on_drift(check, context)

    return dg.sensor(
        name=model.job_name("drift_retraining"),
        job=job,
        minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING
        if model.spec.retraining.policy == "on_drift"
        else dg.DefaultSensorStatus.STOPPED,
        description=f"Retrains model {model.name} when its feature drift check fails at "
        "ERROR (policy on_drift); one retraining per failed evaluation, and the new model "
        "still faces the gate.",
    )(evaluate)


def automation_defs(model: DeclaredModel, interval_s: int) -> dg.Definitions:
    job = retrain_job(model)
    return dg.Definitions(
        jobs=[job],
        schedules=[nightly_schedule(model, job)],
        sensors=[drift_sensor(model, job, interval_s)],
    )
