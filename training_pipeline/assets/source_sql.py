"""A declared ``sql_table`` source's raw asset, its check and its resource.

One batch per run: the rows, the rejected rows, the moved cursor (or fingerprint) and the
ledger row in ``raw.ingestion_batches`` commit in one DuckDB transaction.
"""

import dagster as dg

from training_pipeline.assets.source_common import (
    column_schema,
    one_batch,
    raw_asset_spec,
    source_resource_key,
)
from training_pipeline.environment import is_set
from training_pipeline.ingestion.sql_table import extract_table
from training_pipeline.masking import password_masked
from training_pipeline.resources import SqlSourceResource
from training_pipeline.settings import Settings
from training_pipeline.spec.sources import SourceSystem, SqlTableSource


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
    system: SourceSystem, source: SqlTableSource, settings: Settings, declared_in: object = None
) -> dg.Definitions:
    """``raw/<name>`` with its rows-rejected check, and its resource ``source__<name>``
    (``declared_in``, the declaration's file, is unused: the URL variable is checked
    with the settings, ``source_declarations.py``)."""
    resource_key = source_resource_key(source)

    @dg.asset(**raw_asset_spec(system, source, describe(system, source)))
    def raw_sql_table(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        url = getattr(context.resources, resource_key).url
        limits = context.resources.row_contract.limits()

        def load(con, batch):
            report = extract_table(
                con,
                source,
                url,
                batch_id=batch.batch_id,
                ingested_at=batch.started_at,
                limits=limits,
            )
            return report, [report.query]

        report, batch, closed = one_batch(context, source, load)
        if report.unchanged:
            context.log.info(f"{source.name}: content unchanged since the last load")
        return dg.MaterializeResult(
            data_version=closed.data_version,
            metadata={
                "dagster/row_count": closed.total_rows,
                "dagster/column_schema": column_schema(source),
                "batch_id": batch.batch_id,
                "source": password_masked(url),
                "query": report.query,
                "rows_read": report.rows_read,
                "rows_loaded_this_run": report.rows_loaded,
                "rows_rejected_this_run": report.rows_rejected,
                "cursor_before": report.cursor_before or "(none)",
                "cursor_after": report.cursor_after or "(none)",
                "unchanged": report.unchanged,
            },
            check_results=[closed.check],
        )

    return dg.Definitions(
        assets=[raw_sql_table],
        resources={resource_key: sql_source_resource(source, settings)},
    )
