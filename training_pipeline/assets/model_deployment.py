"""A declared model's promotion (smoke test, automatic rollback) and batch scoring."""

from collections.abc import Iterator
from typing import TYPE_CHECKING

import dagster as dg

from training_pipeline.assets.alias_events import alias_change_metadata, alias_observation
from training_pipeline.assets.model_evidence import production_metadata
from training_pipeline.assets.model_names import OWNERS, DeclaredModel
from training_pipeline.assets.model_training import Candidate
from training_pipeline.assets.production_guard import verified_production
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.lifecycle_alerts import blocked_alert, promoted_alert
from training_pipeline.ml.registry import ModelRegistry, utc_now
from training_pipeline.resources import (
    WAREHOUSE_POOL,
    AlertsResource,
    ModelStoreResource,
    WarehouseResource,
)
from training_pipeline.serving.shadow import shadow_wait, shadowed_since


def promotion_block(
    model: DeclaredModel, registry: ModelRegistry, store: ModelStoreResource, version: str
) -> str | None:
    """Why ``version`` is not promoted now: a person's decision (a pin, a rejection), or
    a shadow period shorter than ``serve.min_shadow_period``; None when it may be."""
    if (block := registry.promotion_block(version)) is not None:
        return block
    since = shadowed_since(model.prediction_logs_dir(store), model.name, version)
    return shadow_wait(model.spec.serve.min_shadow_s, since, utc_now(), version)


if TYPE_CHECKING:
    import pandas as pd

# The ml modules that touch rows (pandas, scikit-learn) are imported in the step that
# needs them: loading the definitions (every UI reload, sensor tick, run start) need not.


def promote(
    context: dg.AssetExecutionContext,
    model: DeclaredModel,
    store: ModelStoreResource,
    alerts: AlertsResource,
    candidate: Candidate,
) -> Iterator[dg.MaterializeResult | dg.AssetObservation]:
    from training_pipeline.ml.deployment import deploy
    from training_pipeline.ml.workflow import holdout_of

    registry = model.registry(store)
    problem = model.problem_of(registry, candidate.version)
    holdout = holdout_of(candidate.dataset, problem, candidate.holdout_snapshots)
    canary = holdout.head(model.spec.deployment.canary_rows)
    gate = registry.get(candidate.version).gate
    if not gate or not gate.get("passed"):
        raise dg.Failure(
            description=f"{candidate.version} has not passed the gate; it is not deployed",
            metadata={"gate": str(gate)},
        )
    # The previous production is what a failed deployment restores: it must verify.
    guarded = verified_production(context, registry, alerts)
    run = (context.run.job_name, context.run.run_id)
    metrics = registry.get(candidate.version).metrics
    if (block := promotion_block(model, registry, store, candidate.version)) is not None:
        # A person's decision (a pin, a rejection) holds: recorded and alerted, not failed.
        production = registry.aliases().production
        context.log.warning(f"{candidate.version} not promoted: {block}")
        alerts.deliver_once(
            blocked_alert(model.name, candidate.version, production, block, metrics, run)
        )
        yield dg.AssetObservation(
            asset_key=model.production,
            metadata={
                "promotion_blocked": block,
                "candidate": candidate.version,
                "production": production or "(none)",
            },
        )
        return
    actor = f"dagster run {context.run.run_id}"
    outcome = deploy(registry, candidate.version, canary, problem, actor=actor)
    if not outcome.deployed:
        context.log_event(alias_observation(model.name, registry.history()[-1]))
        raise dg.Failure(
            description=f"deployment of {candidate.version} failed and was undone: "
            + "; ".join(outcome.reasons),
            metadata={
                "production": outcome.production or "(none)",
                "rolled_back": outcome.rolled_back,
                "withdrawn": outcome.withdrawn,
            },
        )
    change = registry.history()[-1]
    alerts.deliver_once(
        promoted_alert(model.name, candidate.version, change.before.production, metrics, run)
    )
    deployed = registry.get(candidate.version)
    shown = production_metadata(
        deployed.version,
        deployed.family,
        registry.metadata(deployed.version)["params"],
        deployed.metrics,
        deployed.data_fingerprint,
        deployed.gate,
        registry,
    )
    yield dg.MaterializeResult(
        metadata={
            **shown,
            **alias_change_metadata(change),
            "canary_rows": len(canary),
            **guarded,
        }
    )


def write_scores(con, table: str, time_column: str | None, scored: "pd.DataFrame") -> None:
    """Replace the scored time values' rows of ``table``; earlier ones are kept.  Without
    a time column every scoring replaces the whole table."""
    schema = table.split(".", 1)[0]
    scored_rows = (
        "true"
        if time_column is None
        else (f"{time_column} in (select distinct {time_column} from _scored)")
    )
    con.register("_scored", scored)
    try:
        with wh.transaction(con):
            con.execute(f"create schema if not exists {schema}").fetchall()
            con.execute(
                f"create table if not exists {table} as select * from _scored limit 0"
            ).fetchall()
            con.execute(f"delete from {table} where {scored_rows}").fetchall()
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
    from training_pipeline.ml.datasets import latest_snapshot
    from training_pipeline.ml.workflow import scores_of, stored_threshold

    registry = model.registry(store)
    guarded = verified_production(context, registry, alerts)
    production = registry.production()
    if production is None:
        raise dg.Failure(description="no production model to score with: train one first")
    fitted = registry.load(production.version)
    threshold = stored_threshold(production.metrics)
    problem = model.problem_of(registry, production.version)
    columns = problem.scores
    with warehouse.connect() as con:
        current = latest_snapshot(con, problem)
        scored = current[list(problem.keys)].copy()
        scored[columns.score] = scores_of(fitted, current, problem)
        if threshold is not None:
            scored[columns.prediction] = scored[columns.score] >= threshold
        scored["model_version"] = production.version
        scored["scored_at"] = wh.utc_now()
        write_scores(con, model.spec.scores_table, problem.time_column, scored)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(scored),
            "table": model.spec.scores_table,
            "model_version": production.version,
            **score_summary(scored, problem, threshold is not None),
            **guarded,
        }
    )


def score_summary(scored: "pd.DataFrame", problem, decided: bool) -> dict[str, str | float]:
    """The latest time scored, the mean output and (binary) the share predicted positive."""
    empty, columns = scored.empty, problem.scores
    summary: dict[str, str | float] = {}
    if problem.time_column is not None:
        time = problem.time_column
        summary[time] = "(none)" if empty else str(scored[time].max())
    summary[f"mean_{columns.score}"] = (
        0.0 if empty else round(float(scored[columns.score].mean()), 4)
    )
    if decided:
        share = 0.0 if empty else round(float(scored[columns.prediction].mean()), 4)
        summary[f"{columns.prediction}_rate"] = share
    return summary


def scored_rows_text(model: DeclaredModel) -> str:
    time = model.spec.time_column
    return "whose label is still unknown" if time is None else f"of the latest {time}"


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
        # Not materialized while production is pinned, or for a rejected candidate.
        output_required=False,
        description="The candidate promoted to production once the gate passed; a smoke test "
        "on canary rows follows, and a failure restores the previous production model. Not "
        "promoted while production is pinned, nor a rejected version or one trained on the "
        "same training set (an observation says why). Every alias change shows here.",
    )
    def production(
        context: dg.AssetExecutionContext,
        model_store: ModelStoreResource,
        alerts: AlertsResource,
        candidate: Candidate,
    ) -> Iterator[dg.MaterializeResult | dg.AssetObservation]:
        yield from promote(context, model, model_store, alerts, candidate)

    @dg.asset(
        key=model.scores,
        group_name=model.name,
        owners=OWNERS,
        kinds={"duckdb", "scikitlearn"},
        pool=WAREHOUSE_POOL,
        deps=[model.production, model.features_key],
        automation_condition=dg.AutomationCondition.eager(),
        description=f"The production model's {model.spec.scores.score_column} for every row "
        f"{scored_rows_text(model)} of {model.spec.features}, written to "
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
