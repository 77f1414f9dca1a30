"""Copy a declared ``sql_table`` source (a table or a query, any SQLAlchemy database) into
``raw.<name>``, through SQLAlchemy Core: values such as the cursor travel as bound
parameters, and a declared ``query`` is wrapped as a subquery, so the contract's columns
and the cursor filter apply to it as to a table.

Incremental (``incremental.cursor``): the cursor is the largest cursor value already
copied.  Rows are read from it *inclusively*, because another row may share that exact
value and arrive after the previous run; rows already copied are dropped by the
anti-join on (primary key, cursor) in :func:`append_records`, so a rerun adds nothing.

Full refresh (no ``incremental``): every run reads the whole relation in a fixed order
(primary key, else every column) and fingerprints it: sha256 over the column names and
every row as raw keeps it.  The fingerprint is the source's cursor.  A run that finds the
fingerprint of the last load loads nothing; a changed relation loads as one new snapshot,
so the newest batch is the relation as it is now, deleted rows included.

dlt's ``sql_database`` source is not used: its state commits in its own load, not with
``raw.source_cursors`` and ``raw.ingestion_batches`` in one DuckDB transaction, and it
infers types where raw keeps every value as delivered text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import duckdb
import sqlalchemy as sa

from training_pipeline.ingestion.records import append_records, as_text, last_accepted, text_table
from training_pipeline.ingestion.rejected_rows import Provenance, apply_contract
from training_pipeline.ingestion.row_contract import RowContract
from training_pipeline.ingestion.warehouse import (
    ensure_raw_table,
    quote_identifier,
    read_cursor,
    write_cursor,
)
from training_pipeline.masking import password_masked
from training_pipeline.settings import RowContractLimits
from training_pipeline.spec.sources import SqlTableSource

FINGERPRINT_PREFIX = "sha256:"
_SNAPSHOT = "_sql_snapshot"
_CHUNK = "_sql_chunk"


class SqlSourceError(RuntimeError):
    """The declared table or query cannot be read as its declaration says."""


@dataclass(frozen=True)
class SqlReport:
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    cursor_before: str | None
    cursor_after: str | None
    query: str  # what was read, as recorded in _source_ref and the batch's refs
    unchanged: bool = False  # full refresh: the relation's fingerprint is the last load's


def _where(source: SqlTableSource) -> str:
    return f"table {source.table!r}" if source.table is not None else "the declared query"


def source_relation(conn: sa.Connection, source: SqlTableSource, url: str) -> sa.FromClause:
    if source.table is not None:
        schema, _, name = source.table.rpartition(".")
        try:
            return sa.Table(name, sa.MetaData(schema=schema or None), autoload_with=conn)
        except sa.exc.NoSuchTableError as error:
            raise SqlSourceError(
                f"source {source.name!r}: table {source.table!r} not found in "
                f"{password_masked(url)}"
            ) from error
    text = sa.text(source.query or "")
    probe = sa.select(sa.literal_column("*")).select_from(text.columns().subquery("q")).limit(0)
    try:
        names = list(conn.execute(probe).keys())
    except sa.exc.DBAPIError as error:
        raise SqlSourceError(
            f"source {source.name!r}: the declared query fails on {password_masked(url)}: "
            f"{password_masked(str(error.orig))}"
        ) from error
    return text.columns(*(sa.column(n) for n in names)).subquery("source_query")


def _order_columns(source: SqlTableSource, relation: sa.FromClause) -> tuple[str, ...]:
    """Cursor then tiebreak (default: the primary key); full refresh: the primary key,
    else every column the relation has, so the same content always reads in one order."""
    key = tuple(source.contract.primary_key)
    if source.incremental is None:
        return key or tuple(c for c in source.contract.names if c in relation.c)
    tiebreak = (source.incremental.tiebreak,) if source.incremental.tiebreak else key
    return (source.incremental.cursor, *(c for c in tiebreak if c != source.incremental.cursor))


def _check_columns(source: SqlTableSource, relation: sa.FromClause, url: str) -> None:
    present = set(relation.c.keys())
    needed = (*source.contract.required, *_order_columns(source, relation))
    missing = list(dict.fromkeys(c for c in needed if c not in present))
    if not missing:
        return
    cursor = source.incremental.cursor if source.incremental else None
    role = f" (incremental.cursor is {cursor!r})" if cursor in missing else ""
    raise SqlSourceError(
        f"source {source.name!r}: {_where(source)} in {password_masked(url)} lacks columns "
        f"{missing}{role}; it has {sorted(present)}"
    )


def _typed_cursor(source: SqlTableSource, text: str, sample: Any) -> Any:
    """The stored cursor (text, as raw keeps it) as a value of the column's type, found
    from one of the column's values: a declared query's columns carry no type."""
    column = source.incremental.cursor if source.incremental else ""
    try:
        if sample is None or isinstance(sample, str):
            return text
        if isinstance(sample, datetime):
            value = datetime.fromisoformat(text)
            return value.replace(tzinfo=UTC) if sample.tzinfo is not None else value
        if isinstance(sample, date):
            return date.fromisoformat(text)
        if isinstance(sample, int | float | Decimal) and not isinstance(sample, bool):
            return type(sample)(text)
    except (ValueError, ArithmeticError) as error:
        raise SqlSourceError(
            f"source {source.name!r}: the stored cursor {text!r} is not a value of "
            f"incremental.cursor {column!r}, which holds {type(sample).__name__} values: "
            f"{error}"
        ) from error
    raise SqlSourceError(
        f"source {source.name!r}: incremental.cursor {column!r} holds "
        f"{type(sample).__name__} values; a cursor must be a timestamp, date, number or text"
    )


def row_rules(source: SqlTableSource) -> RowContract:
    """The contract's row rules; an incremental source's cursor must be filled too: a row
    without one cannot be placed after the cursor."""
    rules = source.contract.row_contract(source.name)
    cursor = source.incremental.cursor if source.incremental else None
    if cursor is None or cursor in (*rules.keys, *rules.required):
        return rules
    return replace(rules, required=(*rules.required, cursor))


@dataclass(frozen=True)
class _Read:
    """One run's reading of the source: its connection, statement and batch."""

    conn: sa.Connection
    query: sa.Select
    ref: str
    batch_id: str
    ingested_at: datetime
    limits: RowContractLimits

    def chunks(self, rows: int) -> Iterator[list[dict]]:
        result = self.conn.execution_options(stream_results=True, yield_per=rows).execute(
            self.query
        )
        for partition in result.mappings().partitions():
            yield [dict(row) for row in partition]


def extract_table(
    con: duckdb.DuckDBPyConnection,
    source: SqlTableSource,
    url: str,
    *,
    batch_id: str,
    ingested_at: datetime,
    limits: RowContractLimits,
) -> SqlReport:
    """Copy the source's new rows (incremental) or its changed content (full refresh) into
    ``raw.<name>``.

    The caller owns the DuckDB transaction, so the rows, the rejected rows and the moved
    cursor commit together or not at all.
    """
    ensure_raw_table(con, source.name, source.contract.names)
    engine = sa.create_engine(url)
    try:
        try:
            conn = engine.connect()
        except sa.exc.DBAPIError as error:
            raise SqlSourceError(
                f"source {source.name!r}: cannot reach the database {password_masked(url)}: "
                f"{password_masked(str(error.orig))}"
            ) from error
        with conn:
            relation = source_relation(conn, source, url)
            _check_columns(source, relation, url)
            selected = [
                relation.c[c] if c in relation.c else sa.null().label(c)
                for c in source.contract.names
            ]
            query = sa.select(*selected).order_by(
                *(relation.c[c] for c in _order_columns(source, relation))
            )
            ref = f"select {', '.join(source.contract.names)} from " + (
                source.table if source.table is not None else f"({source.query}) as source_query"
            )
            stored = read_cursor(con, source.ledger)
            if source.incremental is None:
                read = _Read(conn, query, ref, batch_id, ingested_at, limits)
                return _full_refresh(con, source, read, stored)
            cursor = source.incremental.cursor
            if stored is not None and stored.startswith(FINGERPRINT_PREFIX):
                stored = None  # the source was a full refresh: its fingerprint is no cursor
            if stored is not None:
                column = relation.c[cursor]
                sample = conn.execute(sa.select(column).where(column.is_not(None)).limit(1))
                query = query.where(column >= _typed_cursor(source, stored, sample.scalar()))
                ref += f" where {cursor} >= '{stored}'"
            read = _Read(conn, query, ref, batch_id, ingested_at, limits)
            return _incremental(con, source, cursor, read, stored)
    finally:
        engine.dispose()


def _incremental(
    con: duckdb.DuckDBPyConnection,
    source: SqlTableSource,
    cursor: str,
    read: _Read,
    cursor_before: str | None,
) -> SqlReport:
    key = tuple(source.contract.primary_key)
    rules = row_rules(source)
    rows_read = rows_loaded = rows_rejected = 0
    cursor_after = cursor_before
    for chunk in read.chunks(source.batch_rows):
        split = append_records(
            con,
            rules,
            chunk,
            provenance=Provenance(source.ledger, read.ref, read.batch_id, read.ingested_at),
            limits=read.limits,
            dedupe_on=key if cursor in key else (*key, cursor),
            cursor=cursor_before,
            cursor_column=cursor,
            first_record=rows_read + 1,
        )
        if (accepted := last_accepted(chunk, split, rows_read + 1)) is not None:
            cursor_after = as_text(accepted[cursor])
        rows_read += len(chunk)
        rows_loaded += split.rows_loaded
        rows_rejected += split.rows_rejected
    if cursor_after is not None and cursor_after != cursor_before:
        write_cursor(con, source.ledger, cursor_after)
    return SqlReport(rows_read, rows_loaded, rows_rejected, cursor_before, cursor_after, read.ref)


def _full_refresh(
    con: duckdb.DuckDBPyConnection,
    source: SqlTableSource,
    read: _Read,
    fingerprint_before: str | None,
) -> SqlReport:
    """Read the whole relation into a temporary table while fingerprinting it; load it as
    one snapshot only when the fingerprint differs from the last load's."""
    names = source.contract.names
    digest = hashlib.sha256(json.dumps(names).encode())
    columns = ", ".join(quote_identifier(c) for c in ("_record", *names))
    typed = ", ".join(f"{quote_identifier(c)} varchar" for c in names)
    con.execute(f"create or replace temp table {_SNAPSHOT} (_record bigint, {typed})").fetchall()
    rows_read = 0
    for chunk in read.chunks(source.batch_rows):
        table = text_table(names, chunk, rows_read + 1)
        for row in zip(*(table.column(c).to_pylist() for c in names), strict=True):
            digest.update(json.dumps(row).encode() + b"\n")
        con.register(_CHUNK, table)
        try:
            con.execute(
                f"insert into {_SNAPSHOT} ({columns}) select {columns} from {_CHUNK}"
            ).fetchall()
        finally:
            con.unregister(_CHUNK)
        rows_read += len(chunk)
    fingerprint = FINGERPRINT_PREFIX + digest.hexdigest()
    unchanged = fingerprint == fingerprint_before
    loaded = rejected = 0
    if not unchanged:
        provenance = Provenance(source.ledger, read.ref, read.batch_id, read.ingested_at)
        split = apply_contract(con, row_rules(source), _SNAPSHOT, provenance, read.limits)
        loaded, rejected = split.rows_loaded, split.rows_rejected
        write_cursor(con, source.ledger, fingerprint)
    con.execute(f"drop table {_SNAPSHOT}").fetchall()
    return SqlReport(
        rows_read, loaded, rejected, fingerprint_before, fingerprint, read.ref, unchanged
    )
