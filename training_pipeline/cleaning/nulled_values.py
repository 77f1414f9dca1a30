"""Counting the delivered values that cleaning turned into nulls, per column.

Every staging model that parses text keeps a ``_delivered`` struct with one VARCHAR field
per parsed column, holding the text as delivered only where the parser refused it
(non-blank text that parsed to null) and null elsewhere: the dbt macro
``refused_texts`` builds it.  A column's nulled count is the count of its field; its
delivered count is the parsed values plus the refused texts (every parser turns blank
text into null, so a parsed value is a non-blank delivered one).  Keeping only the
refused texts makes the struct nearly free to store while the refused values stay
listable in staging.  The counts reach Dagster as metadata, so a source that starts
sending a new date format shows up as a jump in a column's nulled count.

Each count covers the rows of the batches ingested since the previous count (by
``_ingested_at``), not the whole history: its cost follows the batch, and a new format
shows up as a jump in the batch that brought it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import duckdb

from training_pipeline.ingestion.warehouse import quote_identifier

DELIVERED_COLUMN = "_delivered"
BATCH_TIME_COLUMN = "_ingested_at"


@dataclass(frozen=True)
class NulledCount:
    """Of the non-blank values delivered for a column, how many parsed to null."""

    delivered: int
    nulled: int

    @property
    def share(self) -> float:
        return self.nulled / self.delivered if self.delivered else 0.0


def _relation(schema: str, table: str) -> str:
    return f"{quote_identifier(schema)}.{quote_identifier(table)}"


def _column_names(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> set[str]:
    return {
        name
        for (name,) in con.execute(
            "select column_name from information_schema.columns "
            "where table_catalog = current_database() and table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()
    }


def parsed_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    """Columns of the relation that were parsed from a ``_delivered`` field of that name."""
    columns = _column_names(con, schema, table)
    if DELIVERED_COLUMN not in columns:
        return []
    delivered_type = con.sql(
        f"select {DELIVERED_COLUMN} from {_relation(schema, table)} limit 0"
    ).types[0]
    fields = delivered_type.children if delivered_type.id == "struct" else []
    if not fields or any(str(field_type) != "VARCHAR" for _, field_type in fields):
        raise TypeError(
            f"{schema}.{table}.{DELIVERED_COLUMN} must be a STRUCT of VARCHAR fields, one "
            f"per parsed column, holding the refused texts (the dbt macro refused_texts "
            f"builds it), not {delivered_type}"
        )
    return [name for name, _ in fields if name in columns]


@dataclass(frozen=True)
class BatchNulledCounts:
    """The counts of the rows ingested after a time, and the newest such row's time."""

    columns: dict[str, NulledCount]
    counted_through: datetime | None  # unchanged (the ``after`` given) when no row is new


def nulled_values(
    con: duckdb.DuckDBPyConnection, schema: str, table: str, *, after: datetime | None = None
) -> dict[str, NulledCount]:
    """Per parsed column: non-blank delivered values, and those that parsed to null."""
    return nulled_values_since(con, schema, table, after).columns


def nulled_values_since(
    con: duckdb.DuckDBPyConnection, schema: str, table: str, after: datetime | None
) -> BatchNulledCounts:
    """``nulled_values`` of the rows whose ``_ingested_at`` is later than ``after``
    (all rows when ``after`` is None).  A relation without ``_ingested_at`` is an error
    when ``after`` is given: it could only be counted in full."""
    columns = parsed_columns(con, schema, table)
    if not columns:
        return BatchNulledCounts({}, after)
    selects = []
    for column in columns:
        parsed = quote_identifier(column)
        refused = f"{DELIVERED_COLUMN}.{parsed}"
        selects += [
            f"count({parsed})",
            f"count({refused})",
            # A text beside a parsed value (or a blank one) was not refused: the struct
            # holds more than the refused texts and would count them as nulled.
            f"count(*) filter (where {refused} is not null "
            f"and ({parsed} is not null or trim({refused}) = ''))",
        ]
    has_batch_time = BATCH_TIME_COLUMN in _column_names(con, schema, table)
    if after is not None and not has_batch_time:
        raise ValueError(
            f"{schema}.{table} has no {BATCH_TIME_COLUMN} column, so the rows ingested "
            f"after {after.isoformat()} cannot be told apart"
        )
    selects.append(f"max({BATCH_TIME_COLUMN})" if has_batch_time else "null")
    where = f" where {BATCH_TIME_COLUMN} > ?" if after is not None else ""
    (row,) = con.execute(
        f"select {', '.join(selects)} from {_relation(schema, table)}{where}",
        [] if after is None else [after],
    ).fetchall()
    not_refused = [column for i, column in enumerate(columns) if row[3 * i + 2]]
    if not_refused:
        raise ValueError(
            f"{schema}.{table}.{DELIVERED_COLUMN} holds texts that were not refused for "
            f"{', '.join(not_refused)}: a field must be null where the column parsed and "
            f"where the text was blank (build it with the dbt macro refused_texts; rows "
            f"appended before the model used it need `dbt build --full-refresh -s {table}`)"
        )
    return BatchNulledCounts(
        {
            column: NulledCount(delivered=row[3 * i] + row[3 * i + 1], nulled=row[3 * i + 1])
            for i, column in enumerate(columns)
        },
        row[-1] if row[-1] is not None else after,
    )


def nulled_values_by_relation(
    con: duckdb.DuckDBPyConnection,
    relations: Iterable[tuple[str, str]],
    after: Mapping[tuple[str, str], datetime] | None = None,
) -> dict[tuple[str, str], BatchNulledCounts]:
    """``nulled_values_since`` of every relation that has parsed columns; ``after`` holds
    each relation's previous ``counted_through`` (absent: count every row)."""
    counts = {}
    for relation in relations:
        batch = nulled_values_since(con, *relation, (after or {}).get(relation))
        if batch.columns:
            counts[relation] = batch
    return counts
