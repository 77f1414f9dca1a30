"""Delivering simulated rows to the CRM database and the landing folder.

The CRM is written through SQLAlchemy Core only, so the same code fills the default
SQLite file or a PostgreSQL server. Order files appear atomically: each is written under a
hidden temporary name in the landing folder and renamed into place, so a sensor polling
the folder never sees half a file.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from churn_demo.rows import CrmRecord, OrderRow

ORDER_COLUMNS = ("order_id", "customer_id", "ordered_at", "amount", "status")
ORDER_FILE_FORMATS = ("csv", "jsonl", "parquet")

_METADATA = sa.MetaData()
CUSTOMERS = sa.Table(
    "customers",
    _METADATA,
    sa.Column("record_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("customer_id", sa.String(16), nullable=False),
    sa.Column("full_name", sa.Text),
    sa.Column("email", sa.Text),
    sa.Column("age", sa.Text),
    sa.Column("country", sa.Text),
    sa.Column("segment", sa.Text),
    sa.Column("signup_date", sa.Text),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("customers_by_updated_at", "updated_at"),
)


def crm_engine(url: str) -> sa.Engine:
    """An engine for the CRM; a SQLite file's folder is created if needed."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return sa.create_engine(parsed)


def reset_crm(engine: sa.Engine) -> None:
    """Replace the ``customers`` table: a new demo world starts from an empty CRM."""
    CUSTOMERS.drop(engine, checkfirst=True)
    CUSTOMERS.create(engine)


def discard_crm_records_from(engine: sa.Engine, record_id: int) -> int:
    """Delete records the saved state does not know about (left by an interrupted run)."""
    with engine.begin() as conn:
        return conn.execute(sa.delete(CUSTOMERS).where(CUSTOMERS.c.record_id >= record_id)).rowcount


def insert_crm_records(engine: sa.Engine, records: Sequence[CrmRecord]) -> None:
    if not records:
        return
    with engine.begin() as conn:
        conn.execute(sa.insert(CUSTOMERS), [asdict(record) for record in records])


def read_crm_records(engine: sa.Engine) -> list[dict]:
    with engine.connect() as conn:
        result = conn.execute(sa.select(CUSTOMERS).order_by(CUSTOMERS.c.record_id))
        return [dict(row) for row in result.mappings()]


def order_file_format(day: int) -> str:
    """Formats rotate by day so every ingestion path is exercised every three days."""
    return ORDER_FILE_FORMATS[day % len(ORDER_FILE_FORMATS)]


def order_file_name(day: date, fmt: str) -> str:
    return f"orders_{day.isoformat()}.{fmt}"


def _csv_bytes(rows: Sequence[OrderRow]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(ORDER_COLUMNS)
    for r in rows:
        amount = repr(r.amount_text) if isinstance(r.amount_text, float) else r.amount_text
        writer.writerow((r.order_id, r.customer_id, r.ordered_at, amount, r.status))
    return buffer.getvalue().encode("utf-8")


def _jsonl_bytes(rows: Sequence[OrderRow]) -> bytes:
    lines = [
        json.dumps(dict(zip(ORDER_COLUMNS, values, strict=True)), ensure_ascii=False) + "\n"
        for values in (
            (r.order_id, r.customer_id, r.ordered_at, r.amount_text, r.status) for r in rows
        )
    ]
    return "".join(lines).encode("utf-8")


def _parquet_table(rows: Sequence[OrderRow]) -> pa.Table:
    schema = pa.schema([(c, pa.float64() if c == "amount" else pa.string()) for c in ORDER_COLUMNS])
    columns = {
        "order_id": [r.order_id for r in rows],
        "customer_id": [r.customer_id for r in rows],
        "ordered_at": [r.ordered_at for r in rows],
        "amount": [r.amount for r in rows],
        "status": [r.status for r in rows],
    }
    return pa.table(columns, schema=schema)


def write_order_file(landing_dir: Path, day: date, fmt: str, rows: Sequence[OrderRow]) -> Path:
    """Write one day's batch atomically and return its final path."""
    landing_dir.mkdir(parents=True, exist_ok=True)
    final = landing_dir / order_file_name(day, fmt)
    temporary = landing_dir / f".{final.name}.{os.getpid()}.tmp"
    try:
        if fmt == "parquet":
            pq.write_table(_parquet_table(rows), temporary)
        else:
            payload = _csv_bytes(rows) if fmt == "csv" else _jsonl_bytes(rows)
            temporary.write_bytes(payload)
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
    return final
