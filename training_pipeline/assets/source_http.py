"""What an ``http_api`` source declaration becomes: its raw asset, check and resource.

The asset ``raw/<name>`` runs one batch (``ingestion/http_api.py``) in one DuckDB
transaction: the pages' rows, the rows the contract rejected, the moved cursor and the
ledger entry commit together, or none of them does.  The resource ``source__<name>``
carries the base URL: ``dg.EnvVar(<base_url_env>)`` when that variable is set, so
Dagster records its name and never the URL (which may hold a password), else the
declaration's credential-free default.
"""

import dagster as dg

from training_pipeline.assets.rejections import rows_rejected_check, rows_rejected_spec
from training_pipeline.environment import is_set
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.ingestion.http_api import HttpApiClient, ensure_source_table, ingest_http
from training_pipeline.resources import WAREHOUSE_POOL
from training_pipeline.settings import Settings
from training_pipeline.spec.contracts import Contract
from training_pipeline.spec.sources import HttpApiSource, SourceSystem

GROUP = "ingestion"
PROVENANCE = (
    dg.TableColumn("_source", "varchar", description="source (its ledger id)"),
    dg.TableColumn("_source_ref", "varchar", description="file, API page or query"),
    dg.TableColumn("_batch_id", "varchar", description="ingestion batch"),
    dg.TableColumn("_ingested_at", "timestamp", description="batch time, UTC"),
)


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


def column_schema(contract: Contract) -> dg.TableSchema:
    business = [
        dg.TableColumn(name, "varchar", description=column.description)
        for name, column in contract.columns.items()
    ]
    return dg.TableSchema(columns=[*business, *PROVENANCE])


def resource_key_of(source: HttpApiSource) -> str:
    return f"source__{source.name}"  # as assets/sources.py: source_resource_key


def build_http_source_defs(
    system: SourceSystem, source: HttpApiSource, settings: Settings
) -> dg.Definitions:
    """``raw/<name>`` with its rows-rejected check, and its resource ``source__<name>``.

    ``settings`` is unused: everything an HTTP source needs is in its declaration and
    its variable."""
    del settings
    return dg.Definitions(
        assets=[build_http_source_asset(system, source)],
        resources={resource_key_of(source): HttpSourceResource.of(source, base_url_of(source))},
    )


def build_http_source_asset(system: SourceSystem, source: HttpApiSource) -> dg.AssetsDefinition:
    """``raw/<name>``: one batch per run, needing the resource ``source__<name>``."""
    key = dg.AssetKey(list(source.asset_key_path))
    resource_key = resource_key_of(source)
    schema = column_schema(source.contract)

    @dg.asset(
        key=key,
        group_name=GROUP,
        owners=[system.owner] if system.owner else None,
        kinds={"duckdb", "api"},
        pool=WAREHOUSE_POOL,
        description=source.description or f"{source.name} from {source.endpoint} ({system.system})",
        metadata={"dagster/column_schema": schema},
        check_specs=[rows_rejected_spec(key)],
        required_resource_keys={"warehouse", "row_contract", "alerts", resource_key},
    )
    def raw_http_source(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        resources = context.resources
        api: HttpSourceResource = getattr(resources, resource_key)
        limits = resources.row_contract.limits()
        batch_id = wh.new_batch_id(source.ledger)
        started_at = wh.utc_now()
        with api.client() as client, resources.warehouse.connect() as con:
            wh.ensure_raw_layer(con)
            ensure_source_table(con, source)
            with wh.transaction(con):
                report = ingest_http(
                    con, client, batch_id=batch_id, ingested_at=started_at, limits=limits
                )
                wh.record_batch(
                    con,
                    batch_id=batch_id,
                    source=source.ledger,
                    started_at=started_at,
                    rows_loaded=report.rows_loaded,
                    refs=list(report.refs),
                    run_id=context.run.run_id,
                    rows_rejected=report.rows_rejected,
                )
            check = rows_rejected_check(
                context, con, key, batch_id, report.rows_read, limits, resources.alerts
            )
            total = wh.table_row_count(con, wh.RAW_SCHEMA, source.name) or 0
            api_url = f"{client.origin}{source.endpoint}"
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": total,
                "dagster/column_schema": schema,
                "batch_id": batch_id,
                "rows_read": report.rows_read,
                "rows_loaded_this_run": report.rows_loaded,
                "rows_rejected_this_run": report.rows_rejected,
                "cursor_before": report.cursor_before or "(none)",
                "cursor_after": report.cursor_after or "(none)",
                "api": api_url,
                "pages": report.pages,
                "retries": report.retries,
            },
            check_results=[check],
        )

    return raw_http_source
