"""Promotion with a post-deploy smoke test and automatic rollback, then batch scoring."""

from pathlib import Path

import dagster as dg

from training_pipeline.assets.churn_spec import CHURN
from training_pipeline.assets.production_guard import verified_production
from training_pipeline.assets.training import CUSTOMER_SNAPSHOTS, Candidate
from training_pipeline.assets.validation import VALIDATION
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.ml.datasets import latest_snapshot
from training_pipeline.ml.deployment import deploy
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.ml.workflow import holdout_of, scores_of, stored_threshold
from training_pipeline.resources import (
    WAREHOUSE_POOL,
    AlertsResource,
    ModelStoreResource,
    WarehouseResource,
)

CANARY_ROWS = 200


@dg.asset(
    group_name="deployment",
    owners=["team:ml"],
    kinds={"scikitlearn"},
    deps=[VALIDATION],
    # Blocking checks stop downstream steps only within a run; across runs this condition
    # (and the gate decision re-read below) keeps a failed candidate out of production.
    automation_condition=dg.AutomationCondition.eager()
    & dg.AutomationCondition.all_deps_blocking_checks_passed(),
    description="The candidate promoted to production once the gate passed; a smoke test "
    "on canary rows follows, and a failure restores the previous production model.",
)
def production_model(
    context: dg.AssetExecutionContext,
    model_store: ModelStoreResource,
    alerts: AlertsResource,
    churn_model_candidate: Candidate,
) -> dg.MaterializeResult:
    candidate = churn_model_candidate
    registry = ModelRegistry(Path(model_store.models_dir))
    holdout = holdout_of(candidate.dataset, CHURN, candidate.holdout_snapshots)
    canary = holdout.head(CANARY_ROWS)
    gate = registry.get(candidate.version).gate
    if not gate or not gate.get("passed"):
        raise dg.Failure(
            description=f"{candidate.version} has not passed the gate; it is not deployed",
            metadata={"gate": str(gate)},
        )
    # The previous production is what a failed deployment restores: it must verify.
    guarded = verified_production(context, registry, alerts)
    outcome = deploy(
        registry, candidate.version, canary, CHURN, actor=f"dagster run {context.run_id}"
    )
    if not outcome.deployed:
        raise dg.Failure(
            description=f"deployment of {candidate.version} failed and was undone: "
            + "; ".join(outcome.reasons),
            metadata={
                "production": outcome.production or "(none)",
                "rolled_back": outcome.rolled_back,
                "withdrawn": outcome.withdrawn,
            },
        )
    return dg.MaterializeResult(
        metadata={
            "production": outcome.production,
            "canary_rows": len(canary),
            "previous_production": registry.aliases().previous_production or "(none)",
            **guarded,
        }
    )


@dg.asset(
    key=["predictions", "churn_scores"],
    group_name="deployment",
    owners=["team:ml"],
    kinds={"duckdb", "scikitlearn"},
    pool=WAREHOUSE_POOL,
    deps=[dg.AssetKey("production_model"), CUSTOMER_SNAPSHOTS],
    automation_condition=dg.AutomationCondition.eager(),
    description="Churn probability for every active customer at the current snapshot, by "
    "the production model; the model version is recorded on every row.",
)
def churn_scores(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    model_store: ModelStoreResource,
    alerts: AlertsResource,
) -> dg.MaterializeResult:
    registry = ModelRegistry(Path(model_store.models_dir))
    guarded = verified_production(context, registry, alerts)
    production = registry.production()
    if production is None:
        raise dg.Failure(description="no production model to score with: train one first")
    model = registry.load(production.version)
    threshold = stored_threshold(production.metrics)
    with warehouse.connect() as con:
        current = latest_snapshot(con, CHURN)
        scored = current[[CHURN.id_column, CHURN.time_column]].copy()
        scored["churn_probability"] = scores_of(model, current, CHURN)
        scored["predicted_churn"] = scored["churn_probability"] >= threshold
        scored["model_version"] = production.version
        scored["scored_at"] = wh.utc_now()
        con.register("_scored", scored)
        with wh.transaction(con):
            con.execute("create schema if not exists predictions").fetchall()
            con.execute(
                "create table if not exists predictions.churn_scores as "
                "select * from _scored limit 0"
            ).fetchall()
            # Re-scoring a snapshot replaces its rows; earlier snapshots are kept.
            con.execute(
                "delete from predictions.churn_scores where snapshot_date in "
                "(select distinct snapshot_date from _scored)"
            ).fetchall()
            con.execute("insert into predictions.churn_scores select * from _scored").fetchall()
        con.unregister("_scored")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(scored),
            "model_version": production.version,
            "snapshot_date": str(scored[CHURN.time_column].max()) if len(scored) else "(none)",
            "predicted_churn_rate": round(float(scored["predicted_churn"].mean()), 4)
            if len(scored)
            else 0.0,
            "mean_probability": round(float(scored["churn_probability"].mean()), 4)
            if len(scored)
            else 0.0,
            **guarded,
        }
    )
