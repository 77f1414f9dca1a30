"""What the new-data sensor asks each declared source: has it moved since the last look?

A probe takes the source's declaration, its resource (``source__<name>``) and the entry
the sensor's cursor keeps for it, and answers ``(changes, new_entry)``.  Probes read the
sources themselves, never the warehouse: the sensor must not compete with a run for the
warehouse's single writer slot.  A source that cannot be read raises
``SourceUnavailable``; the sensor keeps its entry and looks again next tick.

A source the cursor has no entry for yet (a new instance beside an existing data
directory) starts from what the warehouse already took, as the raw asset's latest
materialization recorded it (``Taken``, ``first_entry``), so the first look does not
re-request everything.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from training_pipeline.ingestion.feed_order import updated_at_instant
from training_pipeline.ingestion.http_client import HttpApiError
from training_pipeline.ingestion.landing_s3_survey import scan_s3_landing, taken_before_cursor_s3
from training_pipeline.ingestion.landing_scan import scan_landing, taken_before_cursor
from training_pipeline.ingestion.records import as_text
from training_pipeline.ingestion.sql_table import SqlSourceError, source_relation
from training_pipeline.ingestion.warehouse import utc_now
from training_pipeline.masking import password_masked
from training_pipeline.settings import RowContractLimits
from training_pipeline.spec.sources import FilesSource, HttpApiSource, Source, SqlTableSource


class SourceUnavailable(Exception):
    """A source the sensor could not read this time; the message names it, masked."""


@dataclass(frozen=True)
class Probe:
    """One look at one source: what moved (run-key material) and the entry to keep."""

    changes: tuple[str, ...]
    entry: str | None


@dataclass(frozen=True)
class Taken:
    """What the last batch of a source took: its ingestion cursor after the batch (None
    for a full-refresh source) and when its run started (epoch seconds)."""

    cursor: str | None
    started_at: float


def first_entry(source: Source, resource: Any, taken: Taken | None) -> str | None:
    """The entry to start from for a source the cursor does not know: the files its
    last batch took, or its ingestion cursor; None (everything is new) without one."""
    if taken is None:
        return None
    if isinstance(source, FilesSource):
        if resource.landing_url is not None:
            return taken_before_cursor_s3(
                resource.s3(), resource.landing_url, resource.limits(), taken.started_at
            )
        return taken_before_cursor(Path(resource.landing_dir), resource.limits(), taken.started_at)
    return taken.cursor


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


def _moved(source: Source, seen: str | None, now: str | None) -> Probe:
    if now is None or now == seen:
        return Probe((), seen)
    return Probe((f"{source.name}:{now}",), now)


def probe_files(source: FilesSource, resource: Any, seen: str | None, until: datetime) -> Probe:
    """New file contents (``path@sha256``) in the source's landing folder, or new objects
    (``s3://bucket/prefix/name@etag``) under its S3 landing prefix, never downloaded."""
    del until
    if resource.landing_url is not None:
        try:
            scan = scan_s3_landing(resource.s3(), resource.landing_url, seen, resource.limits())
        except OSError as error:  # s3fs's errors (denied, no such bucket, unreachable)
            raise SourceUnavailable(
                f"cannot list {resource.landing_url} of source {source.name!r}: {error}"
            ) from error
    else:
        scan = scan_landing(Path(resource.landing_dir), seen, resource.limits())
    changes = tuple(f"{source.name}:{entry}" for entry in scan.new_content)
    return Probe(changes, scan.cursor)


def _is_time(column: sa.ColumnElement) -> bool:
    try:
        return issubclass(column.type.python_type, date)
    except NotImplementedError:  # a declared query's columns carry no type
        return False


def sql_high_water_mark(source: SqlTableSource, url: str, until: datetime) -> str | None:
    """Incremental: the newest cursor value not beyond ``until`` (when the column is a
    time).  Full refresh: a fingerprint of the row count and the largest key."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            relation = source_relation(conn, source, url)
            if source.incremental is not None:
                column = relation.c[source.incremental.cursor]
                newest = sa.select(sa.func.max(column))
                if _is_time(column):
                    newest = newest.where(column <= until)
                return as_text(conn.execute(newest).scalar())
            keys = [relation.c[name] for name in source.contract.primary_key]
            measures = [sa.func.count(), *(sa.func.max(key) for key in keys)]
            row = conn.execute(sa.select(*measures).select_from(relation)).one()
            return "rows:" + "|".join(str(as_text(value)) for value in row)
    except (sa.exc.SQLAlchemyError, SqlSourceError, KeyError) as error:
        raise SourceUnavailable(
            f"cannot read source {source.name!r} at {password_masked(url)}: "
            f"{password_masked(str(error))}"
        ) from error
    finally:
        engine.dispose()


def probe_sql(source: SqlTableSource, resource: Any, seen: str | None, until: datetime) -> Probe:
    return _moved(source, seen, sql_high_water_mark(source, resource.url, until))


def http_high_water_mark(source: HttpApiSource, resource: Any, seen: str | None, until: datetime):
    """Incremental: the feed's newest updated value from ``seen`` on (the feed is ordered
    and the client refuses a page that goes back, so the last plausible one is the
    newest).  Without an incremental parameter: a fingerprint of every record."""
    incremental = source.incremental
    newest = seen if incremental is not None else None
    digest = hashlib.sha256()
    try:
        with resource.client() as client:
            for page in client.iter_pages(seen if incremental is not None else None):
                if incremental is None:
                    for record in page.records:
                        digest.update(json.dumps(record, sort_keys=True, default=str).encode())
                    continue
                stamps = [str(r.get(incremental.updated_field)) for r in page.records]
                newest = newest_plausible(stamps, until) or newest
    except HttpApiError as error:
        raise SourceUnavailable(f"source {source.name!r} unavailable: {error}") from error
    return newest if incremental is not None else "records:" + digest.hexdigest()


def probe_http(source: HttpApiSource, resource: Any, seen: str | None, until: datetime) -> Probe:
    return _moved(source, seen, http_high_water_mark(source, resource, seen, until))


PROBES: dict[str, Callable[[Any, Any, str | None, datetime], Probe]] = {
    "files": probe_files,
    "sql_table": probe_sql,
    "http_api": probe_http,
}
