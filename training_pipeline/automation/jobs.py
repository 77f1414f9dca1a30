"""The project-wide button and the automation sensor; each model adds its own retrain
job, schedule and drift sensor (automation/model_automation.py)."""

import dagster as dg

from training_pipeline.automation.policy import RetrainingPolicy

retrain_on_latest_data = dg.define_asset_job(
    "retrain_on_latest_data",
    selection=dg.AssetSelection.all(),
    description="The one button: ingest every source, clean, build features, train, "
    "validate against production behind the gate, deploy and score.",
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
