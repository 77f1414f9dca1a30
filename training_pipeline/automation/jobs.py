"""Jobs, schedules and the automation sensor: the buttons and the clock."""

import dagster as dg

from training_pipeline.assets.training import training_dataset
from training_pipeline.automation.policy import RetrainingPolicy

POLICY = RetrainingPolicy.from_env()

retrain_on_latest_data = dg.define_asset_job(
    "retrain_on_latest_data",
    selection=dg.AssetSelection.all(),
    description="The one button: ingest every source, clean, build features, train, "
    "validate against production behind the gate, deploy and score.",
)

retrain_model = dg.define_asset_job(
    "retrain_model",
    selection=dg.AssetSelection.assets(training_dataset).downstream(),
    description="Retrain on the features already in the warehouse: export, tune, gate, "
    "deploy, score. What drift and the nightly schedule launch.",
)

nightly_retrain = dg.ScheduleDefinition(
    name="nightly_retrain",
    job=retrain_model,
    cron_schedule=POLICY.cron,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING
    if POLICY.nightly
    else dg.DefaultScheduleStatus.STOPPED,
    description="Retrains every night (TRAINING_PIPELINE_NIGHTLY_RETRAIN=off turns it off); "
    "the new model still has to pass the gate.",
)

downstream_automation = dg.AutomationConditionSensorDefinition(
    "downstream_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=POLICY.sensor_interval_s,
    description="Evaluates every asset's automation condition: cleaned tables, features "
    "and scores follow new raw data; the training chain follows a new training set.",
)
