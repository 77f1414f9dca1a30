"""Sensors that notice new data and request the ingestion that takes it in.

None of them opens the DuckDB warehouse: they look at the landing folder and at the
sources themselves, and keep their own cursors, so they never compete with a run for
the warehouse's single writer slot.
"""

import hashlib
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from training_pipeline.automation.policy import RetrainingPolicy
from training_pipeline.ingestion.crm_database import safe_url
from training_pipeline.ingestion.landing_scan import scan_landing
from training_pipeline.ingestion.records import as_text
from training_pipeline.ingestion.tickets_api import TicketsApiError
from training_pipeline.resources import CrmDatabaseResource, OrderFilesResource, TicketsApiResource

POLICY = RetrainingPolicy.from_env()
RAW_ORDERS = dg.AssetKey(["raw", "orders"])
RAW_CRM = dg.AssetKey(["raw", "crm_customers"])
RAW_TICKETS = dg.AssetKey(["raw", "tickets"])


@dg.sensor(
    asset_selection=[RAW_ORDERS],
    minimum_interval_seconds=POLICY.sensor_interval_s,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests ingestion of order files that are new or changed in the landing "
    "folder; the run key is their paths and content hashes.",
)
def order_files_sensor(
    context: dg.SensorEvaluationContext, order_files: OrderFilesResource
) -> dg.SensorResult:
    scan = scan_landing(Path(order_files.landing_dir), context.cursor)
    if not scan.new_content:
        return dg.SensorResult(skip_reason="no new or changed order files", cursor=scan.cursor)
    key = hashlib.sha256("\n".join(sorted(scan.new_content)).encode()).hexdigest()[:24]
    context.log.info(f"new order files: {', '.join(scan.new_content)}")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"order-files-{key}",
                asset_selection=[RAW_ORDERS],
                tags={"training_pipeline/trigger": "new order files"},
            )
        ],
        cursor=scan.cursor,
    )


def _crm_high_water_mark(url: str) -> str | None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            table = sa.Table("customers", sa.MetaData(), autoload_with=conn)
            value = conn.execute(sa.select(sa.func.max(table.c.updated_at))).scalar()
    except sa.exc.SQLAlchemyError as error:
        raise RuntimeError(f"cannot read the CRM at {safe_url(url)}: {error}") from error
    finally:
        engine.dispose()
    return as_text(value)


def _tickets_high_water_mark(api: TicketsApiResource, since: str | None) -> str | None:
    """The newest updated_at at or after ``since``, reading pages until the end."""
    newest = since
    with api.client() as client:
        for page in client.iter_pages(since):
            for record in page.records:
                stamp = record.get("updated_at")
                if isinstance(stamp, str) and (newest is None or stamp > newest):
                    newest = stamp
    return newest


@dg.sensor(
    asset_selection=[RAW_CRM, RAW_TICKETS],
    minimum_interval_seconds=POLICY.sensor_interval_s,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Polls the CRM database and the ticket API for records newer than the last "
    "ones seen and requests their incremental ingestion.",
)
def source_changes_sensor(
    context: dg.SensorEvaluationContext,
    crm: CrmDatabaseResource,
    tickets_api: TicketsApiResource,
) -> dg.SensorResult:
    crm_seen, _, tickets_seen = (context.cursor or "|").partition("|")
    crm_now = _crm_high_water_mark(crm.url) or ""
    try:
        tickets_now = _tickets_high_water_mark(tickets_api, tickets_seen or None) or ""
    except TicketsApiError as error:
        return dg.SensorResult(
            skip_reason=f"ticket API unavailable: {error}", cursor=context.cursor
        )
    requests = []
    if crm_now and crm_now != crm_seen:
        requests.append(
            dg.RunRequest(
                run_key=f"crm-{crm_now}",
                asset_selection=[RAW_CRM],
                tags={"training_pipeline/trigger": "new CRM records"},
            )
        )
    if tickets_now and tickets_now != tickets_seen:
        requests.append(
            dg.RunRequest(
                run_key=f"tickets-{tickets_now}",
                asset_selection=[RAW_TICKETS],
                tags={"training_pipeline/trigger": "new ticket changes"},
            )
        )
    cursor = f"{crm_now}|{tickets_now}"
    if not requests:
        return dg.SensorResult(skip_reason="no new CRM records or ticket changes", cursor=cursor)
    return dg.SensorResult(run_requests=requests, cursor=cursor)
