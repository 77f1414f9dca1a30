"""The cleaning stage: dbt models on DuckDB, with dbt tests as asset checks."""

from collections.abc import Iterator, Mapping
from datetime import datetime
from functools import cache
from pathlib import Path

import dagster as dg
from dagster_dbt import dbt_assets
from dagster_dbt.dbt_manifest import read_manifest_path

from training_pipeline.assets.dbt_lineage import FOLDER as LINEAGE_FOLDER
from training_pipeline.assets.dbt_lineage import stream_with_kept_lineage
from training_pipeline.assets.dbt_translator import TrainingPipelineDbtTranslator
from training_pipeline.cleaning.nulled_values import NulledCount, nulled_values_by_relation
from training_pipeline.project import dbt_project_for
from training_pipeline.resources import (
    DBT_POOL,
    WAREHOUSE_POOL,
    RawTablesResource,
    WarehouseDbtResource,
    WarehouseResource,
)
from training_pipeline.settings import PROJECT_DBT_TARGET, Settings

# dbt unit tests check the SQL's logic on fixed fixtures, not the data: they run in the
# test suite (training_pipeline_tests/test_dbt_project.py), not in every production build.
BUILD_ARGS = ("build", "--exclude", "resource_type:unit_test")


def cleaned_tables_of(settings: Settings) -> dg.AssetsDefinition:
    """The dbt assets of the configured project folder's models: in the warehouse pool on
    the DuckDB file, in their own pool on a DuckLake, so ingestion runs beside them."""
    return cleaned_tables_for(settings.project_dir, DBT_POOL if settings.lake else WAREHOUSE_POOL)


@cache
def cleaned_tables_for(project_dir: Path, pool: str = WAREHOUSE_POOL) -> dg.AssetsDefinition:
    """One asset per dbt model of ``project_dir``'s manifest, built once per folder and
    pool (the definitions and each declared model's lookups share it)."""
    project = dbt_project_for(project_dir)

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=TrainingPipelineDbtTranslator.for_manifest(
            read_manifest_path(project.manifest_path)
        ),
        pool=pool,
    )
    def cleaned_tables(
        context: dg.AssetExecutionContext,
        dbt: WarehouseDbtResource,
        warehouse: WarehouseResource,
        raw_tables: RawTablesResource,
    ):
        yield from _build(context, dbt, warehouse, raw_tables)

    return cleaned_tables


def _build(
    context: dg.AssetExecutionContext,
    dbt: WarehouseDbtResource,
    warehouse: WarehouseResource,
    raw_tables: RawTablesResource,
) -> Iterator[dg.Output | dg.AssetObservation | dg.AssetCheckResult]:
    with warehouse.connect() as con:  # closed before dbt opens the file
        raw_tables.ensure(con)
    # dbt opens the DuckDB file itself: column types and lineage come from dbt's own
    # post-hook (macros/log_column_metadata.sql), not from a second connection here.
    # The lineage is kept per compiled SQL in the project's dbt target folder.
    lineage_dir = Path(dbt.project_dir) / PROJECT_DBT_TARGET.name / LINEAGE_FOLDER
    built: dict[tuple[str, str], dg.AssetKey] = {}
    invocation = dbt.cli(list(BUILD_ARGS), context=context)
    for event in stream_with_kept_lineage(invocation, lineage_dir):
        if isinstance(event, dg.Output):
            relation = _relation(event.metadata)
            if relation is not None:
                built[relation] = context.asset_key_for_output(event.output_name)
        yield event
    # Only the batches that arrived since the last count are counted (what was counted
    # last is in that count's observation), so the count's cost follows the batch.
    after = {
        relation: counted
        for relation, key in built.items()
        if (counted := _counted_through(context.instance, key)) is not None
    }
    # dbt has exited and this step still holds its pool's slot, so reading the file now
    # cannot collide with any writer (a DuckLake admits readers beside writers anyway).
    with warehouse.connect(read_only=True) as con:
        counts = nulled_values_by_relation(con, built, after)
    for relation, batch in counts.items():
        yield dg.AssetObservation(
            asset_key=built[relation],
            metadata=nulled_metadata(batch.columns)
            | _counted_through_metadata(batch.counted_through),
        )


COUNTED_THROUGH = "nulled_values_counted_through"


def _counted_through(instance: dg.DagsterInstance, key: dg.AssetKey) -> datetime | None:
    """The newest ``_ingested_at`` the previous nulled-value count of ``key`` covered."""
    # The newest few: another kind of observation of the same asset may come between.
    for record in instance.fetch_observations(key, limit=10).records:
        observation = record.asset_observation
        value = observation.metadata.get(COUNTED_THROUGH) if observation else None
        if value is not None:
            return datetime.fromisoformat(str(value.value))
    return None


def _counted_through_metadata(counted_through: datetime | None) -> dict[str, dg.MetadataValue]:
    if counted_through is None:
        return {}
    return {COUNTED_THROUGH: dg.MetadataValue.text(counted_through.isoformat())}


def _relation(metadata: Mapping[str, dg.MetadataValue]) -> tuple[str, str] | None:
    table_name = metadata.get("dagster/table_name")
    if table_name is None:
        return None
    *_, schema, table = str(table_name.value).split(".")
    return schema, table


def nulled_metadata(per_column: Mapping[str, NulledCount]) -> dict[str, dg.MetadataValue]:
    """One number per parsed column of the batch counted (plotted over time in the UI)
    and a table of all."""
    return {
        "nulled_values": dg.MetadataValue.json(
            {
                column: {
                    "delivered": count.delivered,
                    "nulled": count.nulled,
                    "share": round(count.share, 4),
                }
                for column, count in per_column.items()
            }
        ),
        **{f"nulled/{column}": dg.MetadataValue.int(c.nulled) for column, c in per_column.items()},
    }
