"""The one engine for every row contract, and the ledger of rows it refused.

The incoming rows of one file, database chunk or API page sit in a temporary table with
their 1-based position (``_record``).  One query evaluates the contract over all of them
at once: staging's parsers are computed once per row, every rule becomes a flag, and the
first broken rule (in the contract's order: keys, required, timestamps, ranges) names
the row's rejection.  Rejected rows go to ``raw.rejected_rows`` with where they came
from, their position, the column, the value, the rule and the whole row as JSON, so
nothing is lost; the rest go on to the raw table.  Both writes happen in the caller's
transaction, beside the manifest row or the cursor they belong to (files sources hold
their files' rows and refused rows and commit many files at once, ``pending_files.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb

from training_pipeline.ingestion.dbt_grammar import parse_sql
from training_pipeline.ingestion.row_contract import EARLIEST, RowContract
from training_pipeline.ingestion.warehouse import RAW_SCHEMA, quote_identifier
from training_pipeline.ingestion.warehouse import REJECTED_ROWS as LEDGER
from training_pipeline.settings import RowContractLimits

VIOLATIONS = "_contract_violations"
_PARSED = "_contract_parsed"


@dataclass(frozen=True)
class Provenance:
    source: str
    ref: str  # the file, query or API page
    batch_id: str
    ingested_at: datetime


@dataclass(frozen=True)
class Split:
    rows_in: int
    rows_loaded: int
    rows_rejected: int  # newly recorded in the ledger
    rejected_records: frozenset[int]  # positions (1-based) refused, recorded now or before


@dataclass(frozen=True)
class _Rule:
    column: str
    name: str
    condition: str  # over the parsed relation; true when the row breaks the rule
    detail: str  # SQL text expression explaining the breach


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _parsed_name(column: str) -> str:
    return quote_identifier(f"__parsed_{column}")


def _blank(column: str) -> str:
    return f"nullif(trim({quote_identifier(column)}), '') is null"


def _rules(contract: RowContract, upper: datetime, tolerance_h: float) -> list[_Rule]:
    rules: list[_Rule] = []
    for kind, columns in (("key", contract.keys), ("required", contract.required)):
        for column in columns:
            rules.append(
                _Rule(column, f"blank_{kind}", _blank(column), _literal(f"{column} is blank"))
            )
            if (parser := contract.parser(column)) is not None:
                rules.append(
                    _Rule(
                        column,
                        f"unparseable_{kind}",
                        f"not ({_blank(column)}) and {_parsed_name(column)} is null",
                        _literal(f"{column} is not readable by staging's {parser}"),
                    )
                )
    low, high = f"timestamp '{EARLIEST:%Y-%m-%d}'", f"timestamp '{upper:%Y-%m-%d %H:%M:%S}'"
    for column in contract.timestamps:
        parsed = _parsed_name(column)
        rules.append(
            _Rule(
                column,
                "timestamp_out_of_range",
                f"{parsed} < {low} or {parsed} > {high}",
                f"{_literal(f'{column} ')} || cast({parsed} as varchar) || "
                + _literal(
                    f" (UTC) is outside [{EARLIEST:%Y-%m-%d}, {upper:%Y-%m-%d %H:%M:%S}]: "
                    f"before 1900 or after the ingestion time + {tolerance_h:g} h"
                ),
            )
        )
    for bound in contract.ranges:
        parsed = _parsed_name(bound.column)
        outside = [
            f"{parsed} {op} {value!r}"
            for op, value in (("<", bound.low), (">", bound.high))
            if value is not None
        ]
        if outside:
            rules.append(
                _Rule(
                    bound.column,
                    "value_out_of_range",
                    " or ".join(outside),
                    f"{_literal(f'{bound.column} ')} || cast({parsed} as varchar) || "
                    + _literal(f" is outside [{bound.low}, {bound.high}]"),
                )
            )
    return rules


def parsed_sql(contract: RowContract, incoming: str) -> str | None:
    """Each parser's value for every row of ``incoming`` (by ``_record``), or None when
    the contract parses nothing.  The caller stores it in a table before any rule reads
    it: DuckDB computes a parser once only as a column of its own projection; inside a
    rule (``p < low or p > high``), in a filter or through a CTE it inlines, the parse
    ran once per reference and its parts once per use (4x the cost of the parse)."""
    if not contract.parsers:
        return None
    parsed = ", ".join(
        f"{parse_sql(parser, column)} as {_parsed_name(column)}"
        for column, parser in contract.parsers
    )
    return f"select _record, {parsed} from {incoming}"


def violations_sql(
    contract: RowContract,
    incoming: str,
    upper: datetime,
    tolerance_h: float,
    parsed: str | None = None,
) -> str:
    """A query listing the first broken rule of every row of ``incoming`` that breaks one.

    ``parsed``: the table holding ``parsed_sql``'s rows, when the contract parses."""
    rules = _rules(contract, upper, tolerance_h)
    if not rules:  # a contract with nothing to check refuses nothing
        return (
            "select _record, null::varchar as column_name, null::varchar as value, "
            "null::varchar as rule, null::varchar as detail, null::varchar as row_json "
            f"from {incoming} where false"
        )
    if contract.parsers and parsed is None:
        raise ValueError(f"contract for {contract.table}: its parsed values' table is needed")
    flags = ", ".join(f"coalesce({r.condition}, false) as __f{i}" for i, r in enumerate(rules))
    cases = {
        "column_name": [_literal(r.column) for r in rules],
        "value": [quote_identifier(r.column) for r in rules],
        "rule": [_literal(r.name) for r in rules],
        "detail": [r.detail for r in rules],
    }
    picked = ", ".join(
        "case "
        + " ".join(f"when __f{i} then {expr}" for i, expr in enumerate(exprs))
        + f" end as {name}"
        for name, exprs in cases.items()
    )
    row_json = (
        "json_object("
        + ", ".join(f"{_literal(c)}, {quote_identifier(c)}" for c in contract.columns)
        + ")"
    )
    any_flag = " or ".join(f"__f{i}" for i in range(len(rules)))
    rows = incoming if not contract.parsers else f"{incoming} join {parsed} using (_record)"
    return (
        f"select _record, {picked}, cast({row_json} as varchar) as row_json from ("
        f"select *, {flags} from {rows}) where {any_flag}"
    )


def judge_rows(
    con: duckdb.DuckDBPyConnection,
    contract: RowContract,
    incoming: str,
    ingested_at: datetime,
    limits: RowContractLimits,
) -> None:
    """Fill the temporary table ``VIOLATIONS`` with the first broken rule of every row of
    ``incoming`` that breaks one; the caller records them and drops the table."""
    upper = ingested_at + timedelta(hours=limits.future_tolerance_hours)
    parsing = parsed_sql(contract, incoming)
    if parsing is not None:
        con.execute(f"create or replace temp table {_PARSED} as {parsing}").fetchall()
    query = violations_sql(
        contract, incoming, upper, limits.future_tolerance_hours, _PARSED if parsing else None
    )
    con.execute(f"create or replace temp table {VIOLATIONS} as {query}").fetchall()
    if parsing is not None:
        con.execute(f"drop table {_PARSED}").fetchall()


def record_violations(
    con: duckdb.DuckDBPyConnection,
    contract: RowContract,
    provenance: Provenance,
    ledger: str = LEDGER,
    *,
    again: str = "",
) -> int:
    """Append the rows of ``VIOLATIONS`` to ``ledger`` (the ledger, or a table of its
    shape); ``again``: a condition over ``v`` leaving out rows already recorded."""
    ((rejected,),) = con.execute(
        f"insert into {ledger} select ?, ?, ?, ?, _record, column_name, value, rule, "
        f"detail, row_json, ? from {VIOLATIONS} v where true {again}",
        [
            provenance.source,
            contract.table,
            provenance.ref,
            provenance.batch_id,
            provenance.ingested_at,
        ],
    ).fetchall()
    return rejected


def apply_contract(
    con: duckdb.DuckDBPyConnection,
    contract: RowContract,
    incoming: str,
    provenance: Provenance,
    limits: RowContractLimits,
    *,
    dedupe_on: tuple[str, ...] = (),
    cursor: str | None = None,
    cursor_column: str | None = None,
) -> Split:
    """Load the rows of ``incoming`` that keep the contract; record the others.

    ``incoming`` holds the contract's columns as text and ``_record``.  ``dedupe_on``
    (incremental sources, read from their cursor inclusively): rows already in the raw
    table with the same key values and ``cursor_column`` at or after ``cursor`` are not
    loaded again, and a row already in the ledger is not recorded again.
    """
    if cursor is not None and cursor_column is None:
        raise ValueError(f"{contract.table}: a cursor needs the column it is a value of")
    judge_rows(con, contract, incoming, provenance.ingested_at, limits)
    again = (
        f"and not exists (select 1 from {LEDGER} l where l.raw_table = "
        f"{_literal(contract.table)} and l.row_json = v.row_json)"
        if dedupe_on
        else ""
    )
    rejected = record_violations(con, contract, provenance, again=again)
    records = frozenset(r for (r,) in con.execute(f"select _record from {VIOLATIONS}").fetchall())
    loaded = _insert_valid(con, contract, incoming, provenance, dedupe_on, cursor, cursor_column)
    ((rows_in,),) = con.execute(f"select count(*) from {incoming}").fetchall()
    # Not in a finally: after a failed statement DuckDB accepts only the caller's
    # rollback, which removes the table anyway.
    con.execute(f"drop table {VIOLATIONS}").fetchall()
    return Split(rows_in, loaded, rejected, records)


def _insert_valid(
    con: duckdb.DuckDBPyConnection,
    contract: RowContract,
    incoming: str,
    provenance: Provenance,
    dedupe_on: tuple[str, ...],
    cursor: str | None,
    cursor_column: str | None,
) -> int:
    cols = ", ".join(quote_identifier(c) for c in contract.columns)
    kept = f"not exists (select 1 from {VIOLATIONS} v where v._record = i._record)"
    parameters: list[object] = [
        provenance.source,
        provenance.ref,
        provenance.batch_id,
        provenance.ingested_at,
    ]
    target = f"{RAW_SCHEMA}.{quote_identifier(contract.table)}"
    distinct = ""
    if dedupe_on:
        distinct = "distinct "
        match = " and ".join(
            f"r.{quote_identifier(k)} is not distinct from i.{quote_identifier(k)}"
            for k in dedupe_on
        )
        if cursor is not None and cursor_column is not None:
            # Only raw rows at or after the cursor can repeat, so only they are compared.
            # Text order: the rows that repeat hold the cursor's own text, so they count.
            match += f" and r.{quote_identifier(cursor_column)} >= ?"
            parameters.append(cursor)
        kept += f" and not exists (select 1 from {target} r where {match})"
    ((inserted,),) = con.execute(
        f"insert into {target} ({cols}, _source, _source_ref, _batch_id, _ingested_at) "
        f"select {distinct}{cols}, ?, ?, ?, ? from {incoming} i where {kept}",
        parameters,
    ).fetchall()
    return inserted
