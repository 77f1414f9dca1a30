"""Raw-layer assets: one per source, each writing its ``raw`` table in the warehouse."""

from pathlib import Path

import dagster as dg

from training_pipeline.assets.rejections import rows_rejected_check, rows_rejected_spec
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.ingestion.order_files import SOURCE as ORDER_FILES_SOURCE
from training_pipeline.ingestion.order_files import LandingReport, ingest_landing_folder
from training_pipeline.ingestion.reconciliation import reconcile_order_files
from training_pipeline.resources import (
    WAREHOUSE_POOL,
    AlertsResource,
    OrderFilesResource,
    RowContractResource,
    WarehouseResource,
)

GROUP = "ingestion"
OWNERS = ["team:data-platform"]
RAW_ORDERS = dg.AssetKey(["raw", "orders"])


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


def _batch_counts(report: LandingReport) -> dict[str, int]:
    """This run's ledger: files landed = loaded + quarantined, rows landed = loaded +
    rejected + quarantined; deferred files wait."""
    quarantined = report.with_status("quarantined") + report.recovered
    loaded = report.with_status("loaded")
    return {
        "files_landed": len(loaded) + len(quarantined),
        "files_loaded": len(loaded),
        "files_quarantined": len(quarantined),
        "files_deferred": len(report.with_status("deferred")),
        "files_skipped_as_identical": len(report.with_status("skipped")),
        "rows_landed": sum(o.rows_landed or 0 for o in loaded + quarantined),
        "rows_loaded": report.rows_loaded,
        "rows_rejected": report.rows_rejected,
        "rows_quarantined": sum(o.rows_landed or 0 for o in quarantined),
    }


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
    key=RAW_ORDERS,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "file"},
    pool=WAREHOUSE_POOL,
    description="Order files from the landing folder (CSV, JSON Lines, Parquet), each "
    "file loaded once per content; unreadable files are quarantined with a reason.",
    check_specs=[
        dg.AssetCheckSpec(
            "no_quarantined_files",
            asset=RAW_ORDERS,
            description="Fails (WARN, non-blocking) when this run quarantined a file.",
        ),
        dg.AssetCheckSpec(
            "rows_reconcile",
            asset=RAW_ORDERS,
            description="Rows landed = rows in raw.orders + rows rejected + rows "
            "quarantined, per file.",
        ),
        rows_rejected_spec(RAW_ORDERS),
    ],
)
def raw_orders(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    order_files: OrderFilesResource,
    row_contract: RowContractResource,
    alerts: AlertsResource,
) -> dg.MaterializeResult:
    batch_id = wh.new_batch_id(ORDER_FILES_SOURCE)
    started_at = wh.utc_now()
    with warehouse.connect() as con:
        wh.ensure_raw_layer(con)
        report = ingest_landing_folder(
            con,
            Path(order_files.landing_dir),
            Path(order_files.quarantine_dir),
            batch_id,
            started_at,
            order_files.limits(),
            contract_limits=row_contract.limits(),
        )
        loaded = report.with_status("loaded")
        wh.record_batch(
            con,
            batch_id=batch_id,
            source=ORDER_FILES_SOURCE,
            started_at=started_at,
            rows_loaded=report.rows_loaded,
            refs=[o.path for o in loaded],
            run_id=context.run.run_id,
            rows_rejected=report.rows_rejected,
        )
        reconciliation = reconcile_order_files(con)
        rows_in_batch = sum(o.rows_landed or 0 for o in loaded)
        rejected_check = rows_rejected_check(
            context, con, RAW_ORDERS, batch_id, rows_in_batch, row_contract.limits(), alerts
        )
        total = _total_rows(con, "orders")
    quarantined = report.with_status("quarantined") + report.recovered
    for outcome in quarantined:
        context.log.warning(f"quarantined {outcome.path}: {outcome.reason}")
    for outcome in report.with_status("deferred"):
        context.log.info(f"deferred {outcome.path}: {outcome.reason}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": total,
            "dagster/column_schema": _schema_metadata("orders"),
            "batch_id": batch_id,
            "rows_loaded_this_run": report.rows_loaded,
            "this_batch": _batch_counts(report),
            "files_taken": [o.path for o in loaded],
            "files_skipped_as_identical": len(report.with_status("skipped")),
            "files_quarantined": {o.path: o.reason for o in quarantined},
            "files_deferred": {o.path: o.reason for o in report.with_status("deferred")},
            "entries_ignored": dict(report.ignored),
            "extra_columns_ignored": {
                o.path: list(o.extra_columns) for o in loaded if o.extra_columns
            },
            "non_text_columns_kept_as_text": {
                o.path: list(o.non_text_columns) for o in loaded if o.non_text_columns
            },
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="no_quarantined_files",
                passed=not quarantined,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "quarantined": [o.path for o in quarantined],
                    "reasons": {o.path: o.reason for o in quarantined},
                    "recorded_after_a_crash": [o.path for o in report.recovered],
                    "quarantine_dir": order_files.quarantine_dir,
                },
            ),
            dg.AssetCheckResult(
                check_name="rows_reconcile",
                passed=reconciliation.holds,
                metadata={
                    "this_batch": _batch_counts(report),
                    "rows_landed": reconciliation.rows_landed,
                    "rows_loaded": reconciliation.rows_loaded,
                    "rows_rejected": reconciliation.rows_rejected,
                    "rows_quarantined": reconciliation.rows_quarantined,
                    "files_loaded": reconciliation.files_loaded,
                    "files_quarantined": reconciliation.files_quarantined,
                    "mismatched_deliveries": [list(m) for m in reconciliation.mismatched],
                    "mismatched_rejections": [
                        list(m) for m in reconciliation.mismatched_rejections
                    ],
                },
            ),
            rejected_check,
        ],
    )
