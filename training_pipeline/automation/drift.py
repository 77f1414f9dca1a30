"""The on_drift retraining policy: a feature drift check at ERROR launches retraining."""

import dagster as dg

from training_pipeline.assets.drift import FEATURE_DRIFT
from training_pipeline.assets.training import CUSTOMER_SNAPSHOTS
from training_pipeline.automation.jobs import retrain_model
from training_pipeline.automation.policy import RetrainingPolicy

DRIFT_CHECK = dg.AssetCheckKey(CUSTOMER_SNAPSHOTS, FEATURE_DRIFT)


def retrain_on_drift(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    record = context.instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [DRIFT_CHECK]
    ).get(DRIFT_CHECK)
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


def build_drift_retraining_sensor(policy: RetrainingPolicy) -> dg.SensorDefinition:
    """Running under the on_drift policy, stopped otherwise."""
    return dg.sensor(
        name="drift_retraining_sensor",
        job=retrain_model,
        minimum_interval_seconds=policy.sensor_interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING
        if policy.mode == "on_drift"
        else dg.DefaultSensorStatus.STOPPED,
        description="Retrains when the feature drift check fails at ERROR (policy on_drift); "
        "one retraining per failed evaluation, and the new model still faces the gate.",
    )(retrain_on_drift)
