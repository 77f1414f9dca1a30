"""A declared model's promise about its data: ``freshness.max_training_data_age``.

The check ``training_data_fresh`` on ``<model>/production`` fails at ERROR, and alerts
once per production version, when production's training data is older than promised
(``ml/data_age.py`` says how age is measured).  It runs whenever production or its
features change.
"""

from datetime import UTC, datetime

import dagster as dg

from training_pipeline.assets.model_names import DeclaredModel
from training_pipeline.lifecycle_alerts import stale_alert
from training_pipeline.ml.data_age import DataAge, data_age
from training_pipeline.ml.datasets import TrainingSet
from training_pipeline.resources import (
    WAREHOUSE_POOL,
    AlertsResource,
    ModelStoreResource,
    WarehouseResource,
)

CHECK_NAME = "training_data_fresh"


def production_data_age(
    model: DeclaredModel, warehouse: WarehouseResource, store: ModelStoreResource
) -> tuple[str, DataAge] | None:
    """Production's version and the age of its training data; None without production."""
    registry = model.registry(store)
    production = registry.production()
    if production is None:
        return None
    limit = model.spec.freshness.max_age_s
    time_column = model.spec.time_column
    if time_column is None:
        now = datetime.now(UTC).isoformat()
        return production.version, data_age(production.created_at, now, limit)
    dataset = TrainingSet.from_json(registry.read_file(production.version, "training_set.json"))
    with warehouse.connect(read_only=True) as con:
        (newest,) = con.execute(f"select max({time_column}) from {model.spec.features}").fetchone()
    return production.version, data_age(dataset.last_snapshot, str(newest), limit)


def check_data_age(
    context: dg.AssetCheckExecutionContext,
    model: DeclaredModel,
    warehouse: WarehouseResource,
    store: ModelStoreResource,
    alerts: AlertsResource,
) -> dg.AssetCheckResult:
    measured = production_data_age(model, warehouse, store)
    if measured is None:
        return dg.AssetCheckResult(passed=True, metadata={"skipped": "no production model yet"})
    version, age = measured
    promise = model.spec.freshness.max_training_data_age or "(none)"
    if not age.kept:
        limit_days = (age.limit_s or 0) / 86400
        alert = stale_alert(model.name, version, age.trained_through, age.age_days, limit_days)
        outcome = alerts.deliver_once(alert)
        if outcome is not None and outcome.error:
            context.log.warning(outcome.error)
    return dg.AssetCheckResult(
        passed=age.kept,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "production": version,
            "trained_through": age.trained_through,
            "newest_data": age.newest,
            "age_days": round(age.age_days, 2),
            "max_training_data_age": promise,
        },
    )


def data_age_check(model: DeclaredModel) -> dg.AssetChecksDefinition:
    promise = model.spec.freshness.max_training_data_age

    @dg.asset_check(
        asset=model.production,
        name=CHECK_NAME,
        additional_deps=[model.features_key],
        pool=WAREHOUSE_POOL,
        automation_condition=dg.AutomationCondition.eager(),
        description=f"Production's training data is at most {promise} older than the newest "
        f"data in {model.spec.features} (freshness.max_training_data_age); alerts once per "
        "production version when it is not.",
    )
    def training_data_fresh(
        context: dg.AssetCheckExecutionContext,
        warehouse: WarehouseResource,
        model_store: ModelStoreResource,
        alerts: AlertsResource,
    ) -> dg.AssetCheckResult:
        return check_data_age(context, model, warehouse, model_store, alerts)

    return training_data_fresh
