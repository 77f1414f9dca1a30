"""A declared model's checks: feature and prediction drift against its production model's
training data, and whether its production artifact still verifies.

The drift checks pass quietly while there is no production model (there is nothing to
compare against yet) and say so.  A feature drift check at ERROR is what the ``on_drift``
retraining policy reacts to (automation/model_automation.py), once per drift episode;
drift at WARN or ERROR is alerted once per drift episode and severity
(``lifecycle_alerts.drift_episodes_after``).
"""

import json
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from training_pipeline.assets.model_names import DeclaredModel
from training_pipeline.ingestion.warehouse import utc_now
from training_pipeline.lifecycle_alerts import (
    drift_alert,
    drift_alert_due,
    drift_episodes_after,
)
from training_pipeline.ml.artifacts import atomic_write_bytes, atomic_write_json
from training_pipeline.ml.datasets import current_window, frame_fingerprint
from training_pipeline.ml.recovery import production_check
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.ml.registry import utc_now as aware_utc_now
from training_pipeline.resources import (
    WAREHOUSE_POOL,
    AlertsResource,
    ModelStoreResource,
    WarehouseResource,
)

if TYPE_CHECKING:
    import pandas as pd

    from training_pipeline.ml.drift import DriftResult

# Drift measurement and scoring (pandas, scikit-learn, evidently) are imported in the
# check that measures: loading the definitions need not.

DRIFT_DATA = "drift_data"  # metadata key: the fingerprint of the rows the check measured


def production_reference(model: DeclaredModel, registry: ModelRegistry):
    """The production version, its problem (with the roles it was trained on) and the
    latest periods of the data it was fit on."""
    from training_pipeline.ml.drift import reference_snapshots
    from training_pipeline.ml.training_rows import registered_training_rows

    production = registry.production()
    if production is None:
        return None, None, None
    problem = model.problem_of(registry, production.version)
    # The registry's own copy of the rows: it moves with the model, the export may not.
    training = registered_training_rows(registry, production.version)
    return production, problem, reference_snapshots(training, problem)


def check_result(
    drift: "DriftResult", report_dir: Path, name: str, extra: dict
) -> dg.AssetCheckResult:
    report_dir.mkdir(parents=True, exist_ok=True)
    report = report_dir / f"{name}-{utc_now():%Y%m%dT%H%M%S}.html"
    atomic_write_bytes(report, drift.html.encode())
    severity = drift.severity
    return dg.AssetCheckResult(
        passed=severity == "none",
        severity=dg.AssetCheckSeverity.ERROR if severity == "error" else dg.AssetCheckSeverity.WARN,
        metadata=drift.to_metadata() | extra | {"report": dg.MetadataValue.path(str(report))},
    )


def not_judged(
    reason: str, reference_rows: int, current_rows: int, version: str
) -> dg.AssetCheckResult:
    """Windows too small for a distribution test: passed, with the reason shown."""
    return dg.AssetCheckResult(
        passed=True,
        metadata={
            "skipped": reason,
            "production_model": version,
            "reference_rows": reference_rows,
            "current_rows": current_rows,
        },
    )


def no_reference() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=True, metadata={"skipped": "no production model yet: nothing to compare against"}
    )


def check_feature_drift(
    run: tuple[str, str],
    model: DeclaredModel,
    warehouse: WarehouseResource,
    store: ModelStoreResource,
    alerts: AlertsResource,
) -> dg.AssetCheckResult:
    from training_pipeline.ml.drift import feature_drift, too_few_rows

    production, problem, reference = production_reference(model, model.registry(store))
    if production is None:
        return no_reference()
    with warehouse.connect(read_only=True) as con:
        current = current_window(con, problem)
    reason = too_few_rows(len(reference), len(current), problem.drift)
    if reason is not None:
        return not_judged(reason, len(reference), len(current), production.version)
    # What the drift sensor compares to tell new data from a re-check of the same rows.
    extra = {"production_model": production.version, DRIFT_DATA: frame_fingerprint(current)}
    if problem.time_column is not None:
        extra["current_snapshot"] = str(current[problem.time_column].max())
    drift = feature_drift(reference, current, problem)
    episodes = model.reports_dir(store) / "drift" / "episodes.json"
    before = json.loads(episodes.read_text(encoding="utf-8")) if episodes.exists() else {}
    after = drift_episodes_after(before, drift.severity, utc_now().isoformat())
    due = drift_alert_due(before, after)
    if due is not None:
        share = round(drift.drifted_share, 4)
        alert = drift_alert(model.name, due, production.version, share, run, episode=after[due])
        alerts.deliver_once(alert)
    # After the alert: a crash in between repeats an alert rather than losing one.
    episodes.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(episodes, after)
    return check_result(drift, model.reports_dir(store) / "drift", "features", extra)


def check_prediction_drift(
    model: DeclaredModel, warehouse: WarehouseResource, store: ModelStoreResource
) -> dg.AssetCheckResult:
    from training_pipeline.ml.drift import prediction_drift, too_few_rows
    from training_pipeline.ml.workflow import scores_of

    registry = model.registry(store)
    production, problem, reference = production_reference(model, registry)
    if production is None:
        return no_reference()
    fitted = registry.load(production.version)
    with warehouse.connect(read_only=True) as con:
        current = current_scores(con, model, problem, production.version)
    window = problem.drift.predictions_window
    if current.empty:
        where = "live predictions ingested" if window == "live" else "scores"
        return dg.AssetCheckResult(
            passed=True, metadata={"skipped": f"no {where} by {production.version} yet"}
        )
    reason = too_few_rows(len(reference), len(current), problem.drift)
    if reason is not None:
        return not_judged(reason, len(reference), len(current), production.version)
    drift = prediction_drift(scores_of(fitted, reference, problem), current, problem)
    return check_result(
        drift,
        model.reports_dir(store) / "drift",
        "predictions",
        {"production_model": production.version, "current_window": window},
    )


def current_scores(con, model: DeclaredModel, problem, version: str) -> "pd.Series":
    """The current window of ``version``'s outputs: what the online server returned over
    the last ``drift.live_hours`` ("live"), or the batch scores of the newest
    ``drift.current_periods`` ("scores")."""
    drift = problem.drift
    if drift.predictions_window == "live":
        from training_pipeline.serving.ingest import live_scores

        since = aware_utc_now() - timedelta(hours=drift.live_hours)  # predicted_at has a zone
        return live_scores(con, model.name, version, since)
    table, time, score = model.spec.scores_table, problem.time_column, problem.scores.score
    newest = (
        f"select distinct {time} from {table} where model_version = ? "
        f"order by {time} desc limit {drift.current_periods}"
    )
    window = "" if time is None else f"and {time} in ({newest})"
    params = [version] * (1 if time is None else 2)
    return con.execute(
        f"select {score} from {table} where model_version = ? {window}", params
    ).df()[score]


def model_checks(model: DeclaredModel) -> list[dg.AssetChecksDefinition]:
    spec = model.spec

    @dg.asset_check(
        asset=model.features_key,
        name=model.feature_drift_check.name,
        pool=WAREHOUSE_POOL,
        automation_condition=dg.AutomationCondition.eager(),
        description=f"Evidently data drift of the latest features against model {spec.name}'s "
        "production training data: WARN when some columns drift, ERROR when the drifted "
        f"share reaches drift.error_share ({spec.drift.error_share}).",
    )
    def feature_drift_check(
        context: dg.AssetCheckExecutionContext,
        warehouse: WarehouseResource,
        model_store: ModelStoreResource,
        alerts: AlertsResource,
    ) -> dg.AssetCheckResult:
        run = (context.run.job_name, context.run.run_id)
        return check_feature_drift(run, model, warehouse, model_store, alerts)

    live = spec.drift.predictions_window == "live"

    @dg.asset_check(
        asset=model.live_predictions if live else model.scores,
        name="prediction_drift",
        pool=WAREHOUSE_POOL,
        automation_condition=dg.AutomationCondition.eager(),
        description=(
            f"Drift of what production returned to clients over the last "
            f"{spec.drift.live_hours} hours"
            if live
            else "Drift of the scored batch's scores"
        )
        + " against the production model's scores on its own training reference.",
    )
    def prediction_drift_check(
        warehouse: WarehouseResource, model_store: ModelStoreResource
    ) -> dg.AssetCheckResult:
        return check_prediction_drift(model, warehouse, model_store)

    @dg.asset_check(
        asset=model.production,
        name="production_artifact_verifies",
        description="The production model's artifact still hashes to what was registered and "
        "was written by the installed scikit-learn; when it does not, the next run rolls "
        "back to the last earlier production model that verifies.",
    )
    def production_artifact_verifies(model_store: ModelStoreResource) -> dg.AssetCheckResult:
        check = production_check(model.registry(model_store))
        return dg.AssetCheckResult(
            passed=check.verified is not False,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "production": check.version or "(none)",
                "verified": "no production model" if check.verified is None else check.verified,
                "reason": check.reason or "",
            },
        )

    return [feature_drift_check, prediction_drift_check, production_artifact_verifies]
