"""The sensor that notices new data and requests the ingestion that takes it in.

It never opens the DuckDB warehouse: it looks at the landing folder and at the sources
themselves and keeps its own cursor, so it never competes with a run for the
warehouse's single writer slot.  Everything that changed since the last look is
requested in one run, so a day that brings files, CRM records and ticket changes
together is ingested, cleaned and featurized once, not once per source.
"""

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from training_pipeline.assets.source_http import HttpSourceResource
from training_pipeline.automation.policy import RetrainingPolicy
from training_pipeline.ingestion.feed_order import updated_at_instant
from training_pipeline.ingestion.http_client import HttpApiError
from training_pipeline.ingestion.landing_scan import scan_landing
from training_pipeline.ingestion.records import as_text
from training_pipeline.ingestion.warehouse import utc_now
from training_pipeline.masking import password_masked
from training_pipeline.resources import (
    FilesSourceResource,
    RowContractResource,
    SqlSourceResource,
)
from training_pipeline.settings import RowContractLimits

RAW_ORDERS = dg.AssetKey(["raw", "orders"])
RAW_CRM = dg.AssetKey(["raw", "crm_customers"])
RAW_TICKETS = dg.AssetKey(["raw", "tickets"])


class SourceUnavailable(Exception):
    """A source the sensor could not read this time; the message names it, masked."""


@dataclass(frozen=True)
class SensorCursor:
    """What the sensor saw last: the landing scan's cursor and each source's newest stamp."""

    files: str | None = None
    crm: str | None = None
    tickets: str | None = None

    @classmethod
    def parse(cls, text: str | None) -> "SensorCursor":
        return cls(**json.loads(text)) if text else cls()

    def dump(self) -> str:
        return json.dumps(asdict(self))


@dataclass(frozen=True)
class IngestionPlan:
    """Which raw assets to refresh, and a run key that names exactly what changed."""

    assets: tuple[dg.AssetKey, ...]
    changes: tuple[str, ...]

    @property
    def run_key(self) -> str:
        digest = hashlib.sha256("\n".join(sorted(self.changes)).encode()).hexdigest()
        return f"new-data-{digest[:24]}"


def plan_ingestion(
    new_files: tuple[str, ...],
    seen: SensorCursor,
    crm_now: str | None,
    tickets_now: str | None,
) -> IngestionPlan:
    """New file contents (``path@sha256``) and sources whose newest stamp moved."""
    assets, changes = [], []
    if new_files:
        assets.append(RAW_ORDERS)
        changes.extend(f"file:{entry}" for entry in new_files)
    if crm_now is not None and crm_now != seen.crm:
        assets.append(RAW_CRM)
        changes.append(f"crm:{crm_now}")
    if tickets_now is not None and tickets_now != seen.tickets:
        assets.append(RAW_TICKETS)
        changes.append(f"tickets:{tickets_now}")
    return IngestionPlan(tuple(assets), tuple(changes))


def plausible_until(limits: RowContractLimits) -> datetime:
    """The newest stamp a source can really have (naive UTC).  A record dated later is
    rejected by ingestion's row contract; counting it as the newest would hide every
    real change after it from this sensor for good."""
    return utc_now() + timedelta(hours=limits.future_tolerance_hours)


def newest_plausible(stamps: list[str], until: datetime) -> str | None:
    """The last stamp of an ordered feed page that is not beyond ``until``."""
    for stamp in reversed(stamps):
        try:
            moment = updated_at_instant(stamp).astimezone(UTC).replace(tzinfo=None)
        except ValueError:
            continue  # ingestion refuses the page; this sensor only must not crash
        if moment <= until:
            return stamp
    return None


def crm_high_water_mark(url: str, until: datetime) -> str | None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            table = sa.Table("customers", sa.MetaData(), autoload_with=conn)
            newest = sa.select(sa.func.max(table.c.updated_at)).where(table.c.updated_at <= until)
            value = conn.execute(newest).scalar()
    except sa.exc.SQLAlchemyError as error:
        raise SourceUnavailable(
            f"cannot read the CRM at {password_masked(url)}: {error}"
        ) from error
    finally:
        engine.dispose()
    return as_text(value)


def tickets_high_water_mark(
    api: HttpSourceResource, since: str | None, until: datetime
) -> str | None:
    """The newest ``updated_at`` of the change feed from ``since`` on (reads to the end).

    The feed is ordered by ``updated_at`` and the client refuses a page that goes back,
    so the last record seen is the newest.
    """
    newest = since
    try:
        with api.client() as client:
            for page in client.iter_pages(since):
                stamps = [str(r["updated_at"]) for r in page.records]
                newest = newest_plausible(stamps, until) or newest
    except HttpApiError as error:
        raise SourceUnavailable(f"ticket API unavailable: {error}") from error
    return newest


def look_for_new_data(
    context: dg.SensorEvaluationContext,
    # The churn shop's declared `orders` files source (examples/defs/churn/shop); the
    # sensor gets one probe per declared source when it is built from the declarations.
    source__orders: FilesSourceResource,
    crm: SqlSourceResource,
    source__tickets: HttpSourceResource,
    row_contract: RowContractResource,
) -> dg.SensorResult:
    seen = SensorCursor.parse(context.cursor)
    landing_dir = Path(source__orders.landing_dir)
    scan = scan_landing(landing_dir, seen.files, source__orders.limits())
    until = plausible_until(row_contract.limits())
    notes = [f"still settling: {', '.join(scan.deferred)}"] if scan.deferred else []
    try:
        crm_now = crm_high_water_mark(crm.url, until)
    except SourceUnavailable as error:
        # Looked at again next tick; the other sources' news is not held back meanwhile.
        context.log.warning(str(error))
        notes.append(str(error))
        crm_now = seen.crm
    try:
        tickets_now = tickets_high_water_mark(source__tickets, seen.tickets, until)
    except SourceUnavailable as error:
        context.log.warning(str(error))
        notes.append(str(error))
        tickets_now = seen.tickets
    plan = plan_ingestion(scan.new_content, seen, crm_now, tickets_now)
    cursor = SensorCursor(files=scan.cursor, crm=crm_now, tickets=tickets_now).dump()
    if not plan.assets:
        reason = "; ".join(["no new order files, CRM records or ticket changes", *notes])
        return dg.SensorResult(skip_reason=reason, cursor=cursor)
    context.log.info(f"requesting {[k.to_user_string() for k in plan.assets]}: {plan.changes}")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=plan.run_key,
                asset_selection=list(plan.assets),
                tags={"training_pipeline/trigger": "new data"},
            )
        ],
        cursor=cursor,
    )


def build_new_data_sensor(policy: RetrainingPolicy) -> dg.SensorDefinition:
    """The new-data sensor, looking every ``policy.sensor_interval_s`` seconds."""
    return dg.sensor(
        name="new_data_sensor",
        asset_selection=[RAW_ORDERS, RAW_CRM, RAW_TICKETS],
        minimum_interval_seconds=policy.sensor_interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Requests one ingestion run for whatever is new: order files new or changed "
        "in the landing folder (by content hash), CRM records and ticket changes newer than the "
        "last ones seen. The run key names the file hashes and source stamps, so an identical "
        "re-delivery launches nothing.",
    )(look_for_new_data)
