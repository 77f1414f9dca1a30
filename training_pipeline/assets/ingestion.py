"""Raw-layer assets of the sources not declared yet, each writing its ``raw`` table.

Declared sources are built by their kind's factory (``assets/sources.py``)."""

import dagster as dg

from training_pipeline.assets.rejections import rows_rejected_check, rows_rejected_spec
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.ingestion.crm_database import extract_customers
from training_pipeline.ingestion.tickets_api import ingest_tickets
from training_pipeline.masking import password_masked
from training_pipeline.resources import (
    WAREHOUSE_POOL,
    AlertsResource,
    CrmDatabaseResource,
    RowContractResource,
    TicketsApiResource,
    WarehouseResource,
)

GROUP = "ingestion"
OWNERS = ["team:data-platform"]
RAW_CRM_CUSTOMERS = dg.AssetKey(["raw", "crm_customers"])
RAW_TICKETS = dg.AssetKey(["raw", "tickets"])


def _schema_metadata(table: str) -> dg.TableSchema:
    columns = [dg.TableColumn(c, "varchar") for c in wh.RAW_COLUMNS[table]]
    columns += [
        dg.TableColumn("_source", "varchar", description="source system"),
        dg.TableColumn("_source_ref", "varchar", description="file, API page or query"),
        dg.TableColumn("_batch_id", "varchar", description="ingestion batch"),
        dg.TableColumn("_ingested_at", "timestamp", description="batch time, UTC"),
    ]
    return dg.TableSchema(columns=columns)


def _total_rows(con, table: str) -> int:
    return wh.table_row_count(con, wh.RAW_SCHEMA, table) or 0


def _incremental_batch(
    context, warehouse, row_contract, alerts, source, asset_key, extract, refs_of
):
    """Run one incremental extraction as one batch: rows, rejected rows, cursor and ledger
    commit together.  Returns the report, the batch, the table's rows and the check."""
    limits = row_contract.limits()
    batch_id = wh.new_batch_id(source)
    started_at = wh.utc_now()
    with warehouse.connect() as con:
        wh.ensure_raw_layer(con)
        with wh.transaction(con):
            report = extract(con, batch_id, started_at, limits)
            wh.record_batch(
                con,
                batch_id=batch_id,
                source=source,
                started_at=started_at,
                rows_loaded=report.rows_loaded,
                refs=refs_of(report),
                run_id=context.run.run_id,
                rows_rejected=report.rows_rejected,
            )
        check = rows_rejected_check(
            context, con, asset_key, batch_id, report.rows_read, limits, alerts
        )
        return report, batch_id, _total_rows(con, asset_key.path[-1]), check


def _incremental_metadata(report, batch_id: str, total: int, table: str) -> dict:
    return {
        "dagster/row_count": total,
        "dagster/column_schema": _schema_metadata(table),
        "batch_id": batch_id,
        "rows_read": report.rows_read,
        "rows_loaded_this_run": report.rows_loaded,
        "rows_rejected_this_run": report.rows_rejected,
        "cursor_before": report.cursor_before or "(none)",
        "cursor_after": report.cursor_after or "(none)",
    }


@dg.asset(
    key=RAW_CRM_CUSTOMERS,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "sql"},
    pool=WAREHOUSE_POOL,
    description="Customer records from the CRM database, copied incrementally on "
    "updated_at (every change is a new record; staging keeps the latest).",
    check_specs=[rows_rejected_spec(RAW_CRM_CUSTOMERS)],
)
def raw_crm_customers(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    crm: CrmDatabaseResource,
    row_contract: RowContractResource,
    alerts: AlertsResource,
) -> dg.MaterializeResult:
    report, batch_id, total, check = _incremental_batch(
        context,
        warehouse,
        row_contract,
        alerts,
        "crm",
        RAW_CRM_CUSTOMERS,
        lambda con, batch, at, limits: extract_customers(
            con, crm.url, batch_id=batch, ingested_at=at, limits=limits
        ),
        lambda report: [report.query],
    )
    return dg.MaterializeResult(
        metadata=_incremental_metadata(report, batch_id, total, "crm_customers")
        | {"source": password_masked(crm.url), "query": report.query},
        check_results=[check],
    )


@dg.asset(
    key=RAW_TICKETS,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "api"},
    pool=WAREHOUSE_POOL,
    description="Support tickets from the paginated HTTP API, copied incrementally on "
    "updated_at (a ticket reappears when it changes; staging keeps the latest).",
    check_specs=[rows_rejected_spec(RAW_TICKETS)],
)
def raw_tickets(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    tickets_api: TicketsApiResource,
    row_contract: RowContractResource,
    alerts: AlertsResource,
) -> dg.MaterializeResult:
    with tickets_api.client() as client:
        report, batch_id, total, check = _incremental_batch(
            context,
            warehouse,
            row_contract,
            alerts,
            "tickets_api",
            RAW_TICKETS,
            lambda con, batch, at, limits: ingest_tickets(
                con, client, batch_id=batch, ingested_at=at, limits=limits
            ),
            lambda report: list(report.refs),
        )
    return dg.MaterializeResult(
        metadata=_incremental_metadata(report, batch_id, total, "tickets")
        | {"api": tickets_api.base_url, "pages": report.pages, "retries": report.retries},
        check_results=[check],
    )
