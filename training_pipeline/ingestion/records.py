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

from training_pipeline.ingestion.rejected_rows import Provenance, Split, apply_contract
from training_pipeline.ingestion.row_contract import RowContract
from training_pipeline.settings import RowContractLimits


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
    contract: RowContract,
    records: Sequence[Mapping[str, Any]],
    *,
    provenance: Provenance,
    limits: RowContractLimits,
    dedupe_on: Sequence[str],
    cursor: str | None,
    cursor_column: str | None,
    first_record: int = 1,
) -> Split:
    """Insert the records that keep ``contract`` and are not already in ``raw.<table>``
    (same ``dedupe_on`` values); record the ones that break it in the ledger.

    Incremental sources are read from their cursor inclusively, so the rows at the
    cursor come back on the next run; the anti-join makes that rerun a no-op (a rejected
    row comes back too and is not recorded twice).  Only raw rows at or after the cursor
    (``cursor_column >= cursor``, the column the cursor is a value of) can repeat, so only
    they are compared, which keeps a run's cost in proportion to its new rows.
    ``first_record``: the position of ``records[0]`` in its query or page (1-based), as
    the ledger names it.
    """
    if not records:
        return Split(0, 0, 0, frozenset())
    name = f"_incoming_{contract.table}"
    con.register(name, text_table(contract.columns, records, first_record))
    try:
        return apply_contract(
            con,
            contract,
            name,
            provenance,
            limits,
            dedupe_on=tuple(dedupe_on),
            cursor=cursor,
            cursor_column=cursor_column,
        )
    finally:
        con.unregister(name)


def text_table(
    columns: Sequence[str], records: Sequence[Mapping[str, Any]], first_record: int = 1
) -> pa.Table:
    """The records as raw keeps them: ``_record`` (1-based position) and one text column
    per contract column, absent fields as NULL."""
    texts = {c: pa.array([as_text(r.get(c)) for r in records], type=pa.string()) for c in columns}
    positions = pa.array(range(first_record, first_record + len(records)), type=pa.int64())
    return pa.table({"_record": positions, **texts})


def last_accepted(
    records: Sequence[Mapping[str, Any]], split: Split, first_record: int = 1
) -> Mapping[str, Any] | None:
    """The last record of a page or chunk that kept the contract, or None.

    A cursor moves only over accepted records: a rejected one with a far-future
    ``updated_at`` must not carry the cursor past every real change to come.
    """
    for position in range(len(records) - 1, -1, -1):
        if first_record + position not in split.rejected_records:
            return records[position]
    return None
