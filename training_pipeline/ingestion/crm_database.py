"""Incremental extraction of CRM customer records from any SQLAlchemy database.

The cursor is the largest ``updated_at`` already copied.  Rows are read from the cursor
*inclusively*, because another record may share that exact timestamp and arrive after
the previous run; rows already copied are dropped by the anti-join in
:func:`append_records`, so a rerun is a no-op.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import duckdb
import sqlalchemy as sa

from training_pipeline.ingestion.records import append_records, as_text, last_accepted
from training_pipeline.ingestion.rejected_rows import Provenance
from training_pipeline.ingestion.row_contract import CONTRACTS
from training_pipeline.ingestion.warehouse import read_cursor, write_cursor
from training_pipeline.masking import password_masked
from training_pipeline.settings import RowContractLimits

SOURCE = "crm"
TABLE = "customers"
CONTRACT = CONTRACTS["crm_customers"]
COLUMNS = CONTRACT.columns
CHUNK_ROWS = 10_000


class CrmSourceError(RuntimeError):
    """The CRM database cannot be read as the contract in docs/sources.md expects."""


@dataclass(frozen=True)
class CrmReport:
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    cursor_before: str | None
    cursor_after: str | None
    query: str


def _reflect_customers(engine: sa.Engine, url: str) -> sa.Table:
    try:
        table = sa.Table(TABLE, sa.MetaData(), autoload_with=engine)
    except sa.exc.NoSuchTableError as error:
        raise CrmSourceError(f"table {TABLE!r} not found in {password_masked(url)}") from error
    except sa.exc.OperationalError as error:
        raise CrmSourceError(
            f"cannot reach the CRM database {password_masked(url)}: {error.orig}"
        ) from error
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise CrmSourceError(
            f"table {TABLE!r} in {password_masked(url)} lacks columns {missing}; "
            f"it has {sorted(table.columns.keys())}"
        )
    return table


def _chunks(engine: sa.Engine, query: sa.Select) -> Iterator[list[dict]]:
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=CHUNK_ROWS).execute(query)
        for partition in result.mappings().partitions():
            yield [dict(row) for row in partition]


def extract_customers(
    con: duckdb.DuckDBPyConnection,
    url: str,
    *,
    batch_id: str,
    ingested_at: datetime,
    limits: RowContractLimits,
) -> CrmReport:
    """Copy new and changed customer records into raw.crm_customers.

    The caller owns the DuckDB transaction, so the rows and the moved cursor commit
    together or not at all.
    """
    engine = sa.create_engine(url)
    try:
        table = _reflect_customers(engine, url)
        cursor_before = read_cursor(con, SOURCE)
        query = sa.select(*(table.c[c] for c in COLUMNS)).order_by(
            table.c.updated_at, table.c.record_id
        )
        if cursor_before is not None:
            query = query.where(table.c.updated_at >= datetime.fromisoformat(cursor_before))
        ref = f"select {', '.join(COLUMNS)} from {TABLE}" + (
            f" where updated_at >= '{cursor_before}'" if cursor_before else ""
        )
        rows_read = rows_loaded = rows_rejected = 0
        cursor_after = cursor_before
        for chunk in _chunks(engine, query):
            split = append_records(
                con,
                CONTRACT,
                chunk,
                provenance=Provenance(SOURCE, ref, batch_id, ingested_at),
                limits=limits,
                dedupe_on=("record_id", "updated_at"),
                cursor=cursor_before,
                first_record=rows_read + 1,
            )
            if (accepted := last_accepted(chunk, split, rows_read + 1)) is not None:
                cursor_after = as_text(accepted["updated_at"])
            rows_read += len(chunk)
            rows_loaded += split.rows_loaded
            rows_rejected += split.rows_rejected
        if cursor_after is not None and cursor_after != cursor_before:
            write_cursor(con, SOURCE, cursor_after)
        return CrmReport(rows_read, rows_loaded, rows_rejected, cursor_before, cursor_after, ref)
    finally:
        engine.dispose()
