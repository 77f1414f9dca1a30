"""A declared model's promotion (smoke test, automatic rollback) and batch scoring."""

import dagster as dg
import pandas as pd

from training_pipeline.assets.model_names import OWNERS, DeclaredModel
from training_pipeline.assets.model_training import Candidate, readable
from training_pipeline.assets.production_guard import verified_production
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.ml.datasets import latest_snapshot
from training_pipeline.ml.deployment import deploy
from training_pipeline.ml.workflow import holdout_metrics, holdout_of, scores_of
from training_pipeline.resources import (
    WAREHOUSE_POOL,
    AlertsResource,
    ModelStoreResource,
    WarehouseResource,
)

SCORE, PREDICTION = "score", "prediction"


def promote(
    context: dg.AssetExecutionContext,
    model: DeclaredModel,
    store: ModelStoreResource,
    alerts: AlertsResource,
    candidate: Candidate,
) -> dg.MaterializeResult:
    registry = model.registry(store)
    features = model.ml.features
    holdout = holdout_of(candidate.dataset, features, candidate.holdout_snapshots)
    canary = holdout.head(model.spec.deployment.canary_rows)
    gate = registry.get(candidate.version).gate
    if not gate or not gate.get("passed"):
        raise dg.Failure(
            description=f"{candidate.version} has not passed the gate; it is not deployed",
            metadata={"gate": str(gate)},
        )
    # The previous production is what a failed deployment restores: it must verify.
    guarded = verified_production(context, registry, alerts)
    outcome = deploy(
        registry, candidate.version, canary, features, actor=f"dagster run {context.run.run_id}"
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


def write_scores(con, table: str, time_column: str, scored: pd.DataFrame) -> None:
    """Replace the scored time values' rows of ``table``; earlier ones are kept."""
    schema = table.split(".", 1)[0]
    con.register("_scored", scored)
    try:
        with wh.transaction(con):
            con.execute(f"create schema if not exists {schema}").fetchall()
            con.execute(
                f"create table if not exists {table} as select * from _scored limit 0"
            ).fetchall()
            con.execute(
                f"delete from {table} where {time_column} in "
                f"(select distinct {time_column} from _scored)"
            ).fetchall()
            con.execute(f"insert into {table} by name select * from _scored").fetchall()
    finally:
        con.unregister("_scored")


def score(
    context: dg.AssetExecutionContext,
    model: DeclaredModel,
    warehouse: WarehouseResource,
    store: ModelStoreResource,
    alerts: AlertsResource,
) -> dg.MaterializeResult:
    readable(model)
    registry = model.registry(store)
    guarded = verified_production(context, registry, alerts)
    production = registry.production()
    if production is None:
        raise dg.Failure(description="no production model to score with: train one first")
    fitted = registry.load(production.version)
    threshold = holdout_metrics(production.metrics).threshold
    features = model.ml.features
    with warehouse.connect() as con:
        current = latest_snapshot(con, features)
        scored = current[[features.id_column, features.time_column]].copy()
        scored[SCORE] = scores_of(fitted, current, features)
        scored[PREDICTION] = scored[SCORE] >= threshold
        scored["model_version"] = production.version
        scored["scored_at"] = wh.utc_now()
        write_scores(con, model.spec.scores_table, features.time_column, scored)
    empty = scored.empty
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(scored),
            "table": model.spec.scores_table,
            "model_version": production.version,
            features.time_column: "(none)" if empty else str(scored[features.time_column].max()),
            "positive_prediction_rate": 0.0
            if empty
            else round(float(scored[PREDICTION].mean()), 4),
            "mean_score": 0.0 if empty else round(float(scored[SCORE].mean()), 4),
            **guarded,
        }
    )


def deployment_assets(model: DeclaredModel) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=model.production,
        group_name=model.name,
        owners=OWNERS,
        kinds={"scikitlearn"},
        deps=[model.validation],
        ins={"candidate": dg.AssetIn(model.candidate)},
        # Blocking checks stop downstream steps only within a run; across runs this
        # condition (and the gate decision re-read) keeps a failed candidate out.
        automation_condition=dg.AutomationCondition.eager()
        & dg.AutomationCondition.all_deps_blocking_checks_passed(),
        description="The candidate promoted to production once the gate passed; a smoke test "
        "on canary rows follows, and a failure restores the previous production model.",
    )
    def production(
        context: dg.AssetExecutionContext,
        model_store: ModelStoreResource,
        alerts: AlertsResource,
        candidate: Candidate,
    ) -> dg.MaterializeResult:
        return promote(context, model, model_store, alerts, candidate)

    @dg.asset(
        key=model.scores,
        group_name=model.name,
        owners=OWNERS,
        kinds={"duckdb", "scikitlearn"},
        pool=WAREHOUSE_POOL,
        deps=[model.production, model.features_key],
        automation_condition=dg.AutomationCondition.eager(),
        description=f"The production model's score for every row of the latest "
        f"{model.spec.time_column} in {model.spec.features}, written to "
        f"{model.spec.scores_table} with the model version on every row.",
    )
    def scores(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        model_store: ModelStoreResource,
        alerts: AlertsResource,
    ) -> dg.MaterializeResult:
        return score(context, model, warehouse, model_store, alerts)

    return [production, scores]
