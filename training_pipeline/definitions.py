"""The whole pipeline, assembled.  Each stage lives one import away."""

import dagster as dg

from training_pipeline.assets.dbt import cleaned_tables
from training_pipeline.assets.ingestion import raw_crm_customers, raw_orders, raw_tickets
from training_pipeline.resources import build_resources
from training_pipeline.settings import Settings

everything = dg.define_asset_job(
    "materialize_everything",
    selection=dg.AssetSelection.all(),
    description="Ingest every source, then clean with dbt: the whole graph, in order.",
)

defs = dg.Definitions(
    assets=[
        # 1. Ingestion: the raw layer, one asset per source.
        raw_orders,
        raw_crm_customers,
        raw_tickets,
        # 2. Cleaning: dbt staging views and marts.
        cleaned_tables,
    ],
    jobs=[everything],
    resources=build_resources(Settings.from_env()),
)
