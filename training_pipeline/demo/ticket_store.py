"""The support system's own database: one SQLite file, tickets updated in place.

The generator writes it; the API server only reads it (read-only, one connection per
request) so that newly generated days are served without a restart. Satisfaction is
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

from training_pipeline.demo.rows import TicketRow
from training_pipeline.settings import Settings

_SCHEMA = """
create table tickets (
    ticket_id text primary key,
    customer_id text not null,
    created_at text not null,
    updated_at text not null,
    status text not null,
    satisfaction_json text not null,
    channel text not null,
    subject text not null
);
create index tickets_by_update on tickets (updated_at, ticket_id);
create table store_meta (key text primary key, value integer not null);
insert into store_meta (key, value) values ('days_applied', 0);
"""
_UPSERT = """
insert into tickets (ticket_id, customer_id, created_at, updated_at, status,
                     satisfaction_json, channel, subject)
values (?, ?, ?, ?, ?, ?, ?, ?)
on conflict (ticket_id) do update set
    updated_at = excluded.updated_at,
    status = excluded.status,
    satisfaction_json = excluded.satisfaction_json
"""
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
    """Apply one day's changes in one transaction, once: False if already applied.

    Tickets are updated in place, so a day cannot be undone; recording the applied days
    in the same transaction lets an interrupted generation be re-run safely.
    """
    with closing(sqlite3.connect(path)) as conn, conn:
        if _days_applied(conn) > day:
            return False
        conn.executemany(
            _UPSERT,
            [
                (
                    r.ticket_id,
                    r.customer_id,
                    r.created_at,
                    r.updated_at,
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


def fetch_page(
    conn: sqlite3.Connection,
    *,
    updated_since: str | None,
    after: tuple[str, str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Tickets in ``(updated_at, ticket_id)`` order, from ``updated_since`` (inclusive)
    and strictly after the ``after`` key; timestamps compare as text (one fixed format)."""
    clauses, params = [], []
    if updated_since is not None:
        clauses.append("updated_at >= ?")
        params.append(updated_since)
    if after is not None:
        clauses.append("(updated_at > ? or (updated_at = ? and ticket_id > ?))")
        params += [after[0], after[0], after[1]]
    where = f"where {' and '.join(clauses)}" if clauses else ""
    sql = (
        "select ticket_id, customer_id, created_at, updated_at, status, satisfaction_json,"
        f" channel, subject from tickets {where} order by updated_at, ticket_id limit ?"
    )
    rows = conn.execute(sql, [*params, limit]).fetchall()
    return [
        dict(zip(FIELDS, (*row[:5], json.loads(row[5]), *row[6:]), strict=True)) for row in rows
    ]


def all_tickets(path: Path) -> list[dict[str, Any]]:
    with closing(connect_read_only(path)) as conn:
        return fetch_page(conn, updated_since=None, after=None, limit=-1)
