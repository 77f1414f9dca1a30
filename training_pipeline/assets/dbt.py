"""The cleaning stage: dbt models on DuckDB, with dbt tests as asset checks."""

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from training_pipeline.assets.dbt_translator import TrainingPipelineDbtTranslator
from training_pipeline.project import dbt_project
from training_pipeline.resources import WAREHOUSE_POOL


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=TrainingPipelineDbtTranslator(),
    pool=WAREHOUSE_POOL,
)
def cleaned_tables(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    # dbt opens the DuckDB file itself, so this step holds the warehouse pool's slot and
    # row counts are not fetched while dbt still has the file open.
    yield from dbt.cli(["build"], context=context).stream()
