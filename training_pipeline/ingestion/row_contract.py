"""What a delivered row must be to load: each source's row contract, declared as data.

A contract names columns and what each must hold; it never holds code.  One engine
(``rejected_rows.py``) turns any contract into one set-based DuckDB query, so a source
declared elsewhere (a YAML file, later) gets the same rules by declaring the same data.

Raw keeps every value as delivered text and staging parses it, so a contract judges
only what it can judge soundly on text:

* a key or required column that is missing or blank;
* a key or required column with a parser that staging's parser cannot read (its
  not-null test would otherwise fail every run from then on);
* a bounded timestamp that staging *does* parse, to a moment before 1900-01-01 or after
  the ingestion time plus a tolerance (``TRAINING_PIPELINE_FUTURE_TOLERANCE_HOURS``);
* a bounded value that staging parses to a number outside its declared range.

A messy value that staging reads ("$1,234.50", "twenty-five", any timestamp format in
docs/sources.md) always passes: the parsers are staging's own macros (``dbt_grammar.py``).
A value staging cannot read in an optional column is not a contract breach: staging
nulls it and counts it (``cleaning/nulled_values.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

EARLIEST = datetime(1900, 1, 1)


@dataclass(frozen=True)
class ValueRange:
    column: str
    low: float | None = None  # inclusive; None: unbounded
    high: float | None = None


@dataclass(frozen=True)
class RowContract:
    """The rules for the rows of one raw table.

    ``parsers`` maps a column to the dbt macro staging parses it with (in
    ``dbt_project/macros``); ``timestamps`` and ``ranges`` name parsed columns.
    """

    table: str
    columns: tuple[str, ...]
    keys: tuple[str, ...]
    required: tuple[str, ...] = ()
    parsers: tuple[tuple[str, str], ...] = ()
    timestamps: tuple[str, ...] = ()
    ranges: tuple[ValueRange, ...] = ()

    def __post_init__(self) -> None:
        parsed = dict(self.parsers)
        unknown = [
            c
            for c in (*self.keys, *self.required, *parsed, *self.timestamps)
            + tuple(r.column for r in self.ranges)
            if c not in self.columns
        ]
        if unknown:
            raise ValueError(f"contract for {self.table}: unknown columns {unknown}")
        unparsed = [
            c for c in (*self.timestamps, *(r.column for r in self.ranges)) if c not in parsed
        ]
        if unparsed:
            raise ValueError(
                f"contract for {self.table}: {unparsed} are bounded but have no parser"
            )

    def parser(self, column: str) -> str | None:
        return dict(self.parsers).get(column)
