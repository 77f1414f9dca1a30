"""Append records fetched by Python drivers (database rows, API pages) to a raw table.

Records travel as an Arrow table of text columns straight into DuckDB: a page or a
chunk at a time, never a whole table through pandas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from training_pipeline.ingestion.warehouse import RAW_SCHEMA, quote_identifier


def as_text(value: Any) -> str | None:
    """How a delivered value is kept in raw: text, with timestamps as UTC ISO 8601."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(sep=" ")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise TypeError(f"nested value {value!r} where a scalar was expected")
    return str(value)


def append_records(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: Sequence[str],
    records: Sequence[Mapping[str, Any]],
    *,
    provenance: tuple[str, str, str, datetime],
    dedupe_on: Sequence[str],
    cursor: str | None,
) -> int:
    """Insert records not already in ``raw.<table>`` (same ``dedupe_on`` values).

    Incremental sources are read from their cursor inclusively, so the rows at the
    cursor come back on the next run; the anti-join makes that rerun a no-op.  Only
    raw rows at or after the cursor (``updated_at >= cursor``) can repeat, so only they
    are compared, which keeps a run's cost in proportion to its new rows.
    Returns the number of rows inserted.
    """
    if not records:
        return 0
    arrow = pa.table(
        {c: pa.array([as_text(r.get(c)) for r in records], type=pa.string()) for c in columns}
    )
    source, ref, batch_id, ingested_at = provenance
    name = f"_incoming_{table}"
    con.register(name, arrow)
    try:
        cols = ", ".join(quote_identifier(c) for c in columns)
        match = " and ".join(
            f"r.{quote_identifier(k)} is not distinct from i.{quote_identifier(k)}"
            for k in dedupe_on
        )
        return con.execute(
            f"insert into {RAW_SCHEMA}.{table} ({cols}, _source, _source_ref, _batch_id, "
            f"_ingested_at) select distinct {cols}, ?, ?, ?, ? from {name} i "
            f"where not exists (select 1 from {RAW_SCHEMA}.{table} r where {match} "
            "and (?::varchar is null or r.updated_at >= ?))",
            [source, ref, batch_id, ingested_at, cursor, cursor],
        ).fetchall()[0][0]
    finally:
        con.unregister(name)
