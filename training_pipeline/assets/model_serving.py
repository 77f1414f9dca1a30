"""What the online server saw: its prediction log, ingested into the warehouse.

``<model>/live_predictions`` loads the log files ``training-pipeline serve`` wrote for
the model into ``serving.predictions`` (serving/ingest.py) on a schedule, in the
warehouse pool like every step that writes the DuckDB file.  With
``drift.predictions_window: live`` the prediction-drift check hangs here and compares
what production returned to clients against its training reference.  A candidate served
in shadow (``serve.shadow``) gets an observation with its agreement with production.
"""

import dagster as dg

from training_pipeline.assets.model_names import OWNERS, DeclaredModel
from training_pipeline.resources import WAREHOUSE_POOL, ModelStoreResource, WarehouseResource
from training_pipeline.serving.ingest import PREDICTIONS, ingest, shadow_agreement

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
        for shadow in shadows:
            # Shown on the candidate: how its shadow predictions compare with production's.
            context.log_event(
                dg.AssetObservation(asset_key=model.candidate, metadata=shadow_metadata(shadow))
            )
        return dg.MaterializeResult(
            metadata={
                "files_loaded": loaded.files,
                "rows_loaded": loaded.rows,
                "files_already_loaded": loaded.already_loaded,
                "dagster/row_count": total,
            }
        )

    return [live_predictions]


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
