"""The whole pipeline, assembled.  Each stage lives one import away."""

import dagster as dg

from training_pipeline.assets.dbt import cleaned_tables
from training_pipeline.assets.deployment import churn_scores, production_model
from training_pipeline.assets.drift import feature_drift_check, prediction_drift_check
from training_pipeline.assets.ingestion import raw_crm_customers, raw_orders, raw_tickets
from training_pipeline.assets.production_guard import production_artifact_verifies
from training_pipeline.assets.training import churn_model_candidate, training_dataset
from training_pipeline.assets.validation import churn_model_validation
from training_pipeline.automation.alerts import alert_on_run_failure
from training_pipeline.automation.drift import drift_retraining_sensor
from training_pipeline.automation.jobs import (
    downstream_automation,
    nightly_retrain,
    retrain_model,
    retrain_on_latest_data,
)
from training_pipeline.automation.sensors import new_data_sensor
from training_pipeline.environment import check_environment
from training_pipeline.resources import build_resources
from training_pipeline.settings import Settings

# Every TRAINING_PIPELINE_* setting at once, so a bad one fails loading, not a run.
check_environment()

defs = dg.Definitions(
    assets=[
        # 1. Ingestion: the raw layer, one asset per source.
        raw_orders,
        raw_crm_customers,
        raw_tickets,
        # 2. Cleaning and 3. features: dbt staging views, marts, point-in-time snapshots.
        cleaned_tables,
        # 4. Training: export the labelled snapshots, tune and register a candidate.
        training_dataset,
        churn_model_candidate,
        # 5. Validation (the blocking gate) and deployment, then batch scoring.
        churn_model_validation,
        production_model,
        churn_scores,
    ],
    asset_checks=[
        # Drift of the newest features and scores against the production model's data.
        feature_drift_check,
        prediction_drift_check,
        # Whether the production artifact still verifies (runs fall back if it does not).
        production_artifact_verifies,
    ],
    jobs=[retrain_on_latest_data, retrain_model],
    schedules=[nightly_retrain],
    sensors=[
        # New data in: order files landing, CRM records and ticket changes.
        new_data_sensor,
        # Everything downstream follows by declarative automation; drift retrains.
        downstream_automation,
        drift_retraining_sensor,
        # Every failed run, failed gate and automatic rollback: a JSON line and a webhook.
        alert_on_run_failure,
    ],
    # Steps of a run share one process: start-up dominates on small machines.
    executor=dg.in_process_executor,
    resources=build_resources(Settings.from_env()),
)
