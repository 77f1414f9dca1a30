"""Jobs, schedules and the automation sensor: the buttons and the clock."""

import dagster as dg

from training_pipeline.assets.training import TRAINING_DATASET
from training_pipeline.automation.policy import RetrainingPolicy

retrain_on_latest_data = dg.define_asset_job(
    "retrain_on_latest_data",
    selection=dg.AssetSelection.all(),
    description="The one button: ingest every source, clean, build features, train, "
    "validate against production behind the gate, deploy and score.",
)

retrain_model = dg.define_asset_job(
    "retrain_model",
    selection=dg.AssetSelection.assets(TRAINING_DATASET).downstream(),
    description="Retrain on the features already in the warehouse: export, tune, gate, "
    "deploy, score. What drift and the nightly schedule launch.",
)


def build_nightly_retrain(policy: RetrainingPolicy) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="nightly_retrain",
        job=retrain_model,
        cron_schedule=policy.cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING
        if policy.nightly
        else dg.DefaultScheduleStatus.STOPPED,
        description="Retrains every night (TRAINING_PIPELINE_NIGHTLY_RETRAIN=off turns it "
        "off); the new model still has to pass the gate.",
    )


def build_downstream_automation(
    policy: RetrainingPolicy,
) -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        "downstream_automation",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=policy.sensor_interval_s,
        description="Evaluates every asset's automation condition: cleaned tables, features "
        "and scores follow new raw data; the training chain follows a new training set.",
    )
