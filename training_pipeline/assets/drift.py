"""Drift checks: the newest features and scores against the production model's training data.

Both checks pass quietly while there is no production model (there is nothing to compare
against yet) and say so in their metadata.  A drift check at ERROR is what the
``on_drift`` retraining policy reacts to (see automation/drift.py).
"""

from pathlib import Path

import dagster as dg
import pandas as pd

from training_pipeline.assets.churn_spec import CHURN
from training_pipeline.assets.training import CUSTOMER_SNAPSHOTS
from training_pipeline.automation.policy import RetrainingPolicy
from training_pipeline.ingestion.warehouse import utc_now
from training_pipeline.ml.artifacts import atomic_write_bytes
from training_pipeline.ml.datasets import TrainingSet, latest_snapshot, load_training_set
from training_pipeline.ml.drift import (
    DriftResult,
    feature_drift,
    prediction_drift,
    reference_snapshots,
)
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.ml.workflow import scores_of
from training_pipeline.resources import WAREHOUSE_POOL, ModelStoreResource, WarehouseResource

FEATURE_DRIFT = "feature_drift"
CHURN_SCORES = dg.AssetKey(["predictions", "churn_scores"])


def _production_reference(registry: ModelRegistry):
    production = registry.production()
    if production is None:
        return None, None
    # The registry keeps its own copy of the manifest: the export it names is immutable.
    dataset = TrainingSet.from_manifest(production.directory / "training_set.json")
    return production, reference_snapshots(load_training_set(dataset), CHURN)


def _result(drift: DriftResult, report_dir: Path, name: str, extra: dict) -> dg.AssetCheckResult:
    report_dir.mkdir(parents=True, exist_ok=True)
    report = report_dir / f"{name}-{utc_now():%Y%m%dT%H%M%S}.html"
    atomic_write_bytes(report, drift.html.encode())
    severity = drift.severity
    return dg.AssetCheckResult(
        passed=severity == "none",
        severity=dg.AssetCheckSeverity.ERROR if severity == "error" else dg.AssetCheckSeverity.WARN,
        metadata=drift.to_metadata() | extra | {"report": dg.MetadataValue.path(str(report))},
    )


def _no_reference() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=True, metadata={"skipped": "no production model yet: nothing to compare against"}
    )


def check_feature_drift(
    warehouse: WarehouseResource, model_store: ModelStoreResource, drift_share_error: float
) -> dg.AssetCheckResult:
    registry = ModelRegistry(Path(model_store.models_dir))
    production, reference = _production_reference(registry)
    if production is None:
        return _no_reference()
    with warehouse.connect(read_only=True) as con:
        current = latest_snapshot(con, CHURN)
    drift = feature_drift(
        reference,
        current,
        CHURN,
        drift_share_error=drift_share_error,
    )
    return _result(
        drift,
        Path(model_store.reports_dir) / "drift",
        "features",
        {
            "production_model": production.version,
            "current_snapshot": str(current[CHURN.time_column].max()),
        },
    )


def build_feature_drift_check(policy: RetrainingPolicy) -> dg.AssetChecksDefinition:
    """The feature drift check, at ERROR from the policy's drifted share on."""

    @dg.asset_check(
        asset=CUSTOMER_SNAPSHOTS,
        name=FEATURE_DRIFT,
        pool=WAREHOUSE_POOL,
        automation_condition=dg.AutomationCondition.eager(),
        description="Evidently data drift of the current snapshot's features against the "
        "production model's training data: WARN when some columns drift, ERROR when the "
        "drifted share reaches TRAINING_PIPELINE_DRIFT_SHARE_ERROR (default 0.5).",
    )
    def feature_drift_check(
        warehouse: WarehouseResource, model_store: ModelStoreResource
    ) -> dg.AssetCheckResult:
        return check_feature_drift(warehouse, model_store, policy.drift_share_error)

    return feature_drift_check


@dg.asset_check(
    asset=CHURN_SCORES,
    name="prediction_drift",
    pool=WAREHOUSE_POOL,
    automation_condition=dg.AutomationCondition.eager(),
    description="Drift of the scored batch's churn probabilities against the production "
    "model's scores on its own training reference.",
)
def prediction_drift_check(
    warehouse: WarehouseResource, model_store: ModelStoreResource
) -> dg.AssetCheckResult:
    registry = ModelRegistry(Path(model_store.models_dir))
    production, reference = _production_reference(registry)
    if production is None:
        return _no_reference()
    model = registry.load(production.version)
    with warehouse.connect(read_only=True) as con:
        current: pd.DataFrame = con.execute(
            "select churn_probability from predictions.churn_scores where model_version = ? "
            "and snapshot_date = (select max(snapshot_date) from predictions.churn_scores)",
            [production.version],
        ).df()
    if current.empty:
        return dg.AssetCheckResult(
            passed=True, metadata={"skipped": f"no scores by {production.version} yet"}
        )
    drift = prediction_drift(
        scores_of(model, reference, CHURN), current["churn_probability"], CHURN
    )
    return _result(
        drift,
        Path(model_store.reports_dir) / "drift",
        "predictions",
        {"production_model": production.version},
    )
