"""Counting the delivered values that cleaning turned into nulls, per column.

Every staging model that parses text keeps what it parsed from in a ``_delivered``
struct (one field per parsed column, holding the text as delivered).  A value counts as
nulled when the delivered text was not blank and the parsed column is null: the parser
rejected it rather than guessing.  The counts reach Dagster as metadata, so a source
that starts sending a new date format shows up as a jump in a column's nulled count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import duckdb

from training_pipeline.ingestion.warehouse import quote_identifier

DELIVERED_COLUMN = "_delivered"


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


def parsed_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    """Columns of the relation that were parsed from a ``_delivered`` field of that name."""
    columns = {
        name
        for (name,) in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()
    }
    if DELIVERED_COLUMN not in columns:
        return []
    delivered_type = con.sql(
        f"select {DELIVERED_COLUMN} from {_relation(schema, table)} limit 0"
    ).types[0]
    if delivered_type.id != "struct":
        raise TypeError(
            f"{schema}.{table}.{DELIVERED_COLUMN} must be a STRUCT of the delivered texts, "
            f"not {delivered_type}"
        )
    return [name for name, _ in delivered_type.children if name in columns]


def nulled_values(
    con: duckdb.DuckDBPyConnection, schema: str, table: str
) -> dict[str, NulledCount]:
    """Per parsed column: non-blank delivered values, and those that parsed to null."""
    columns = parsed_columns(con, schema, table)
    if not columns:
        return {}
    selects = []
    for column in columns:
        delivered = (
            f"nullif(trim(cast({DELIVERED_COLUMN}.{quote_identifier(column)} as varchar)), '')"
        )
        selects.append(f"count({delivered})")
        selects.append(
            f"count(*) filter (where {delivered} is not null "
            f"and {quote_identifier(column)} is null)"
        )
    (row,) = con.execute(f"select {', '.join(selects)} from {_relation(schema, table)}").fetchall()
    return {
        column: NulledCount(delivered=row[2 * i], nulled=row[2 * i + 1])
        for i, column in enumerate(columns)
    }


def nulled_values_by_relation(
    con: duckdb.DuckDBPyConnection, relations: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, NulledCount]]:
    """``nulled_values`` of every relation that has parsed columns."""
    counts = {}
    for schema, table in relations:
        per_column = nulled_values(con, schema, table)
        if per_column:
            counts[(schema, table)] = per_column
    return counts
