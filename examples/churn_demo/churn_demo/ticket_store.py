"""The support system's own database: one SQLite file holding every version of every ticket.

Each change of a ticket is a new row of ``ticket_versions`` (its full state right after
the change), never an update, so the API can serve a change feed: a full backfill
returns each ticket's history and an incremental poll every change since its cursor,
intermediate ones included. Without that history, a past snapshot would see a ticket
only in its final state (closed, rated) and features computed as of that date would
differ from what scoring saw then. The ``tickets`` view is the current state, derived
from the versions so the two can never disagree.

The generator writes the store; the API server only reads it (read-only, one connection
per request) so that newly generated days are served without a restart. Satisfaction is
stored as JSON text because the source mixes numbers and strings (``4``, ``"4"``,
``"4/5"``) and the API must hand each back exactly as it was given.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path
from typing import Any

from churn_demo.rows import TicketRow
from training_pipeline.settings import Settings

# The primary key is the API's keyset: a second version of a ticket at the same second
# would make pagination ambiguous, so the insert fails instead (support.py schedules a
# ticket's changes strictly later than the previous one).
_SCHEMA = """
create table ticket_versions (
    updated_at text not null,
    ticket_id text not null,
    customer_id text not null,
    created_at text not null,
    status text not null,
    satisfaction_json text not null,
    channel text not null,
    subject text not null,
    primary key (updated_at, ticket_id)
) without rowid;
create unique index ticket_versions_by_ticket on ticket_versions (ticket_id, updated_at);
create view tickets as
select ticket_id, customer_id, created_at, updated_at, status, satisfaction_json,
       channel, subject
from (
    select *, row_number() over (
        partition by ticket_id order by updated_at desc
    ) as newest_first
    from ticket_versions
)
where newest_first = 1;
create table store_meta (key text primary key, value integer not null);
insert into store_meta (key, value) values ('days_applied', 0);
"""
_INSERT = """
insert into ticket_versions (updated_at, ticket_id, customer_id, created_at, status,
                             satisfaction_json, channel, subject)
values (?, ?, ?, ?, ?, ?, ?, ?)
"""
_COLUMNS = (
    "ticket_id, customer_id, created_at, updated_at, status, satisfaction_json, channel, subject"
)
FIELDS = (
    "ticket_id", "customer_id", "created_at", "updated_at", "status", "satisfaction",
    "channel", "subject",
)  # fmt: skip


def ticket_store_path(settings: Settings) -> Path:
    return settings.demo_dir / "tickets.sqlite"


def create_store(path: Path) -> None:
    """A new, empty store; an existing file (an earlier world) is replaced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.executescript(_SCHEMA)


def _days_applied(conn: sqlite3.Connection) -> int:
    return conn.execute("select value from store_meta where key = 'days_applied'").fetchone()[0]


def apply_day(path: Path, day: int, rows: Iterable[TicketRow]) -> bool:
    """Append one day's versions in one transaction, once: False if already applied.

    Recording the applied days in the same transaction lets an interrupted generation be
    re-run safely: a day is either wholly in the store or not at all, and is never
    appended twice.
    """
    with closing(sqlite3.connect(path)) as conn, conn:
        if _days_applied(conn) > day:
            return False
        conn.executemany(
            _INSERT,
            [
                (
                    r.updated_at,
                    r.ticket_id,
                    r.customer_id,
                    r.created_at,
                    r.status,
                    json.dumps(r.satisfaction),
                    r.channel,
                    r.subject,
                )
                for r in rows
            ],
        )
        conn.execute("update store_meta set value = ? where key = 'days_applied'", (day + 1,))
    return True


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection; raises FileNotFoundError when nothing was generated yet."""
    if not path.is_file():
        raise FileNotFoundError(path)
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)


def _as_record(row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(FIELDS, (*row[:5], json.loads(row[5]), *row[6:]), strict=True))


def fetch_page(
    conn: sqlite3.Connection,
    *,
    updated_since: str | None,
    after: tuple[str, str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Ticket versions in ``(updated_at, ticket_id)`` order, from ``updated_since``
    (inclusive) and strictly after the ``after`` key; timestamps compare as text (one
    fixed format)."""
    clauses, params = [], []
    if updated_since is not None:
        clauses.append("updated_at >= ?")
        params.append(updated_since)
    if after is not None:
        clauses.append("(updated_at > ? or (updated_at = ? and ticket_id > ?))")
        params += [after[0], after[0], after[1]]
    where = f"where {' and '.join(clauses)}" if clauses else ""
    sql = f"select {_COLUMNS} from ticket_versions {where} order by updated_at, ticket_id limit ?"
    return [_as_record(row) for row in conn.execute(sql, [*params, limit]).fetchall()]


def all_versions(path: Path) -> list[dict[str, Any]]:
    """Every version of every ticket, in the API's ``(updated_at, ticket_id)`` order."""
    with closing(connect_read_only(path)) as conn:
        return fetch_page(conn, updated_since=None, after=None, limit=-1)


def all_tickets(path: Path) -> list[dict[str, Any]]:
    """Each ticket's current state (its latest version), in ``(updated_at, ticket_id)`` order."""
    with closing(connect_read_only(path)) as conn:
        rows = conn.execute(f"select {_COLUMNS} from tickets order by updated_at, ticket_id")
        return [_as_record(row) for row in rows.fetchall()]
