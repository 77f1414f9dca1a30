"""What an ``http_api`` source declaration becomes: its raw asset, check and resource.

The asset ``raw/<name>`` runs one batch (``ingestion/http_api.py``) in one DuckDB
transaction: the pages' rows, the rows the contract rejected, the moved cursor and the
ledger entry commit together, or none of them does.  The resource ``source__<name>``
carries the base URL: ``dg.EnvVar(<base_url_env>)`` when that variable is set, so
Dagster records its name and never the URL (which may hold a password), else the
declaration's credential-free default.
"""

import dagster as dg

from training_pipeline.assets.source_common import (
    column_schema,
    one_batch,
    raw_asset_spec,
    source_resource_key,
)
from training_pipeline.environment import is_set
from training_pipeline.ingestion.http_api import HttpApiClient, ensure_source_table, ingest_http
from training_pipeline.settings import Settings
from training_pipeline.spec.sources import HttpApiSource, SourceSystem


class HttpSourceResource(dg.ConfigurableResource):
    """One declared HTTP API: where it is, and its declaration (as JSON, so that run
    config can show and override it like any other field)."""

    base_url: str
    declaration: str

    @classmethod
    def of(cls, source: HttpApiSource, base_url: str | dg.EnvVar) -> "HttpSourceResource":
        return cls(base_url=base_url, declaration=source.model_dump_json())

    @property
    def source(self) -> HttpApiSource:
        return HttpApiSource.model_validate_json(self.declaration)

    def client(self) -> HttpApiClient:
        return HttpApiClient(self.source, self.base_url)


def base_url_of(source: HttpApiSource) -> str | dg.EnvVar:
    """The variable when it is set (or when there is no default: the run then fails
    naming it), else the declaration's credential-free default."""
    if is_set(source.base_url_env) or source.base_url_default is None:
        return dg.EnvVar(source.base_url_env)
    return source.base_url_default


def build_http_source_defs(
    system: SourceSystem, source: HttpApiSource, settings: Settings, declared_in: object = None
) -> dg.Definitions:
    """``raw/<name>`` with its rows-rejected check, and its resource ``source__<name>``.

    ``settings`` and ``declared_in`` are unused: everything an HTTP source needs is in
    its declaration and its variable (checked with the settings)."""
    del settings, declared_in
    return dg.Definitions(
        assets=[build_http_source_asset(system, source)],
        resources={source_resource_key(source): HttpSourceResource.of(source, base_url_of(source))},
    )


def build_http_source_asset(system: SourceSystem, source: HttpApiSource) -> dg.AssetsDefinition:
    """``raw/<name>``: one batch per run, needing the resource ``source__<name>``."""
    resource_key = source_resource_key(source)
    description = source.description or f"{source.name} from {source.endpoint} ({system.system})"

    @dg.asset(**raw_asset_spec(system, source, description))
    def raw_http_source(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        api: HttpSourceResource = getattr(context.resources, resource_key)
        limits = context.resources.row_contract.limits()
        with api.client() as client:

            def load(con, batch):
                report = ingest_http(
                    con,
                    client,
                    batch_id=batch.batch_id,
                    ingested_at=batch.started_at,
                    limits=limits,
                )
                return report, list(report.refs)

            def prepare(con):
                ensure_source_table(con, source)

            report, batch, closed = one_batch(context, source, load, prepare)
            api_url = f"{client.origin}{source.endpoint}"
        return dg.MaterializeResult(
            data_version=closed.data_version,
            metadata={
                "dagster/row_count": closed.total_rows,
                "dagster/column_schema": column_schema(source),
                "batch_id": batch.batch_id,
                "rows_read": report.rows_read,
                "rows_loaded_this_run": report.rows_loaded,
                "rows_rejected_this_run": report.rows_rejected,
                "cursor_before": report.cursor_before or "(none)",
                "cursor_after": report.cursor_after or "(none)",
                "api": api_url,
                "pages": report.pages,
                "retries": report.retries,
            },
            check_results=[closed.check],
        )

    return raw_http_source
