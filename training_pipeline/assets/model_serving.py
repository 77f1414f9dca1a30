"""What the online server saw: its prediction log, ingested into the warehouse.

``<model>/live_predictions`` loads the log files ``training-pipeline serve`` wrote for
the model into ``serving.predictions`` (serving/ingest.py) on a schedule, in the
warehouse pool like every step that writes the DuckDB file.  With
``drift.predictions_window: live`` the prediction-drift check hangs here and compares
what production returned to clients against its training reference.  A candidate served
in shadow (``serve.shadow``) gets an observation with its agreement with production
and, on the requests it answered, both models' live metrics once labels arrived
(serving/live_labels.py); production gets one with its own live metrics.
"""

import dagster as dg

from training_pipeline.assets.model_names import OWNERS, DeclaredModel
from training_pipeline.resources import WAREHOUSE_POOL, ModelStoreResource, WarehouseResource
from training_pipeline.serving.ingest import PREDICTIONS, ingest, shadow_agreement
from training_pipeline.serving.live_labels import (
    LiveMetrics,
    labels_relation_exists,
    live_metrics,
)

# Often enough that live drift is judged on recent traffic, rarely enough that the
# warehouse pool stays free for ingestion and training.
INGEST_CRON = "*/15 * * * *"


def serving_assets(model: DeclaredModel) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=model.live_predictions,
        group_name=model.name,
        owners=OWNERS,
        kinds={"duckdb"},
        pool=WAREHOUSE_POOL,
        automation_condition=dg.AutomationCondition.on_cron(INGEST_CRON),
        description=f"Every prediction the online server made for {model.name} (production "
        f"and shadow), loaded from its log files into {PREDICTIONS}, each file exactly once.",
    )
    def live_predictions(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        model_store: ModelStoreResource,
    ) -> dg.MaterializeResult:
        with warehouse.connect() as con:
            loaded = ingest(con, model.prediction_logs_dir(model_store), model.name)
            (total,) = con.execute(
                f"select count(*) from {PREDICTIONS} where model = ?", [model.name]
            ).fetchone()
            shadows = shadow_agreement(con, model.name)
            # Before the features relation is first built there is no label to join: said
            # on the asset, and ingestion goes on.
            labels = labels_relation_exists(con, model.problem)
            compared = {
                s["shadow"]: live_metrics(con, model.name, model.problem, s["shadow"])
                for s in shadows
                if labels
            }
            every = live_metrics(con, model.name, model.problem) if labels else []
            served = [m for m in every if m.role == "production"]
        no_labels = {} if labels else {"live_metrics": f"{model.problem.relation} not built yet"}
        for shadow in shadows:
            # Shown on the candidate: how its shadow predictions compare with production's.
            paired = paired_metadata(compared[shadow["shadow"]]) if labels else no_labels
            metadata = shadow_metadata(shadow) | paired
            context.log_event(dg.AssetObservation(asset_key=model.candidate, metadata=metadata))
        if served:  # the version served most recently: production now, or until the swap
            context.log_event(
                dg.AssetObservation(
                    asset_key=model.production,
                    metadata={"live_version": served[0].version, **live_metadata(served[0])},
                )
            )
        return dg.MaterializeResult(
            metadata={
                "files_loaded": loaded.files,
                "rows_loaded": loaded.rows,
                "files_already_loaded": loaded.already_loaded,
                "dagster/row_count": total,
                **no_labels,
            }
        )

    return [live_predictions]


def live_metadata(measured: LiveMetrics, prefix: str = "live") -> dict[str, str | float | int]:
    """Counts, and each metric (n/a: undefined, e.g. no label yet or a single class)."""
    shown: dict[str, str | float | int] = {
        f"{prefix}_rows_served": measured.served,
        f"{prefix}_rows_identified": measured.identified,
        f"{prefix}_rows_labelled": measured.labelled,
    }
    for name, value in measured.values.items():
        shown[f"{prefix}_{name}"] = "n/a" if value is None else round(value, 4)
    return shown


def paired_metadata(measured: list[LiveMetrics]) -> dict[str, str | float | int]:
    """The shadow's live metrics and production's on the same requests."""
    shown: dict[str, str | float | int] = {}
    for m in measured:
        shown |= live_metadata(m, "live" if m.role == "shadow" else "production_live")
    return shown


def shadow_metadata(shadow: dict) -> dict[str, str | float | int]:
    hours = (shadow["last_at"] - shadow["first_at"]).total_seconds() / 3600
    agreement = shadow["agreement"]
    return {
        "shadow_version": shadow["shadow"],
        "production_version": shadow["production"],
        "shadow_records": shadow["records"],
        "agreement_with_production": "n/a" if agreement is None else round(agreement, 4),
        "mean_abs_score_difference": round(shadow["mean_abs_score_difference"], 6),
        "shadowed_from": shadow["first_at"].isoformat(),
        "shadowed_until": shadow["last_at"].isoformat(),
        "shadowed_hours": round(hours, 2),
    }
