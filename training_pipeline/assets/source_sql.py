"""A declared ``sql_table`` source's raw asset, its check and its resource.

One batch per run: the rows, the rejected rows, the moved cursor (or fingerprint) and the
ledger row in ``raw.ingestion_batches`` commit in one DuckDB transaction.
"""

import dagster as dg

from training_pipeline.assets.rejections import rows_rejected_check, rows_rejected_spec
from training_pipeline.environment import is_set
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.ingestion.sql_table import extract_table
from training_pipeline.masking import password_masked
from training_pipeline.resources import WAREHOUSE_POOL, SqlSourceResource
from training_pipeline.settings import Settings
from training_pipeline.spec.sources import SourceSystem, SqlTableSource

GROUP = "ingestion"
PROVENANCE = (
    dg.TableColumn("_source", "varchar", description="source (its ledger id)"),
    dg.TableColumn("_source_ref", "varchar", description="the query that was read"),
    dg.TableColumn("_batch_id", "varchar", description="ingestion batch"),
    dg.TableColumn("_ingested_at", "timestamp", description="batch time, UTC"),
)


def column_schema(source: SqlTableSource) -> dg.TableSchema:
    business = [
        dg.TableColumn(name, "varchar", description=column.description)
        for name, column in source.contract.columns.items()
    ]
    return dg.TableSchema(columns=[*business, *PROVENANCE])


def describe(system: SourceSystem, source: SqlTableSource) -> str:
    read = f"table {source.table}" if source.table is not None else "a declared query"
    how = (
        f"copied incrementally on {source.incremental.cursor}"
        if source.incremental is not None
        else "copied whole whenever its content changes (a fingerprint per load)"
    )
    said = f"{source.description.strip()}\n\n" if source.description else ""
    return f"{said}From {read} of the {system.system} database, {how}."


def sql_source_resource(source: SqlTableSource, settings: Settings) -> SqlSourceResource:
    """The URL's variable when it is set (Dagster records its name, never its value),
    else the declaration's credential-free default; with neither, the variable all the
    same, so a run fails naming it."""
    fallback = source.url_fallback(str(settings.data_dir))
    if is_set(source.url_env) or fallback is None:
        return SqlSourceResource(url=dg.EnvVar(source.url_env))
    return SqlSourceResource(url=fallback)


def sql_table_defs(
    system: SourceSystem, source: SqlTableSource, settings: Settings
) -> dg.Definitions:
    # Imported here: assets/sources.py imports this module to list it among the factories.
    from training_pipeline.assets.sources import source_resource_key

    key = dg.AssetKey(list(source.asset_key_path))
    resource_key = source_resource_key(source)
    schema = column_schema(source)

    @dg.asset(
        key=key,
        group_name=GROUP,
        owners=[system.owner] if system.owner else None,
        kinds={"duckdb", "sql"},
        pool=WAREHOUSE_POOL,
        description=describe(system, source),
        metadata={"dagster/column_schema": schema},
        check_specs=[rows_rejected_spec(key)],
        required_resource_keys={"warehouse", "row_contract", "alerts", resource_key},
    )
    def raw_sql_table(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        resources = context.resources
        url = getattr(resources, resource_key).url
        limits = resources.row_contract.limits()
        batch_id = wh.new_batch_id(source.ledger)
        started_at = wh.utc_now()
        with resources.warehouse.connect() as con:
            wh.ensure_raw_layer(con)
            with wh.transaction(con):
                report = extract_table(
                    con, source, url, batch_id=batch_id, ingested_at=started_at, limits=limits
                )
                wh.record_batch(
                    con,
                    batch_id=batch_id,
                    source=source.ledger,
                    started_at=started_at,
                    rows_loaded=report.rows_loaded,
                    refs=[report.query],
                    run_id=context.run.run_id,
                    rows_rejected=report.rows_rejected,
                )
            check = rows_rejected_check(
                context, con, key, batch_id, report.rows_read, limits, resources.alerts
            )
            total = wh.table_row_count(con, wh.RAW_SCHEMA, source.name) or 0
        if report.unchanged:
            context.log.info(f"{source.name}: content unchanged since the last load")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": total,
                "dagster/column_schema": schema,
                "batch_id": batch_id,
                "source": password_masked(url),
                "query": report.query,
                "rows_read": report.rows_read,
                "rows_loaded_this_run": report.rows_loaded,
                "rows_rejected_this_run": report.rows_rejected,
                "cursor_before": report.cursor_before or "(none)",
                "cursor_after": report.cursor_after or "(none)",
                "unchanged": report.unchanged,
            },
            check_results=[check],
        )

    return dg.Definitions(
        assets=[raw_sql_table],
        resources={resource_key: sql_source_resource(source, settings)},
    )
