"""A source's contract: the columns it delivers, in order, and what each row must hold.

Raw tables keep every value as delivered text; the contract names the columns (exact,
case-sensitive), the primary key, and per column the staging parser and bounds that the
rejected-rows engine (``ingestion/rejected_rows.py``) judges rows by.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from training_pipeline.ingestion.row_contract import RowContract, ValueRange
from training_pipeline.spec.errors import FieldError

# Staging parsers whose result is a moment: such columns are bounded in time by default.
TIME_PARSERS = frozenset({"parse_date", "parse_timestamp_utc"})
_COLUMN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class Spec(BaseModel):
    """Frozen, and strict about unknown fields: a misspelt key is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Column(Spec):
    """One delivered column.  All fields are optional: ``amount: {}`` is a valid column."""

    description: str | None = None
    optional: bool = False  # may be absent from a delivery; loaded as NULL then
    not_blank: bool = False  # every row must fill it (primary-key columns always must)
    parse: str | None = None  # the dbt macro staging parses it with, e.g. parse_timestamp_utc
    time_bounds: bool | None = None  # None: on when `parse` is a date/timestamp parser
    low: float | None = None  # inclusive bounds of the parsed value; need `parse`
    high: float | None = None

    @property
    def bounded_in_time(self) -> bool:
        return self.time_bounds if self.time_bounds is not None else self.parse in TIME_PARSERS

    @model_validator(mode="after")
    def _rules(self) -> Column:
        if self.parse is not None and not self.parse.isidentifier():
            raise FieldError("parse", f"{self.parse!r} is not a macro name", "e.g. parse_date")
        if (self.low is not None or self.high is not None or self.time_bounds) and not self.parse:
            raise FieldError("parse", "bounds need a parser: staging must read the value first")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise FieldError("low", f"{self.low} is above high {self.high}")
        return self


class Contract(Spec):
    """The columns a source delivers, in order, and what identifies a row."""

    columns: dict[str, Column]
    primary_key: list[str] = []

    @field_validator("columns", mode="before")
    @classmethod
    def _accept_lists_and_blanks(cls, value: Any) -> Any:
        """``[a, b]`` and ``{a: , b: {...}}`` both mean columns with default settings."""
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return {item: {} for item in value}
        if isinstance(value, dict):
            return {name: {} if spec is None else spec for name, spec in value.items()}
        return value

    @model_validator(mode="after")
    def _rules(self) -> Contract:
        if not self.columns:
            raise FieldError("columns", "declares no column", "at least one column")
        for name in self.columns:
            if not _COLUMN.match(name):
                raise FieldError(
                    f"columns.{name}",
                    "is not a usable column name (names starting with _ are the "
                    "pipeline's provenance columns)",
                    "a letter, then letters, digits or _",
                )
        for position, key in enumerate(self.primary_key):
            if key not in self.columns:
                raise FieldError(
                    f"primary_key.{position}",
                    f"{key!r} is not a declared column",
                    ", ".join(self.columns),
                )
            if self.columns[key].optional:
                raise FieldError(
                    f"columns.{key}.optional", "a primary-key column cannot be optional"
                )
        return self

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        """Columns every delivery must carry."""
        return tuple(name for name, column in self.columns.items() if not column.optional)

    def row_contract(self, table: str) -> RowContract:
        """The row rules of this contract, for the rejected-rows engine."""
        parsed = [(name, c.parse) for name, c in self.columns.items() if c.parse]
        return RowContract(
            table=table,
            columns=self.names,
            keys=tuple(self.primary_key),
            required=tuple(
                n for n, c in self.columns.items() if c.not_blank and n not in self.primary_key
            ),
            parsers=tuple(parsed),
            timestamps=tuple(n for n, c in self.columns.items() if c.bounded_in_time),
            ranges=tuple(
                ValueRange(n, c.low, c.high)
                for n, c in self.columns.items()
                if c.low is not None or c.high is not None
            ),
        )

    def check_column(self, field: str, column: str) -> None:
        if column not in self.columns:
            raise FieldError(
                field, f"{column!r} is not a column of the contract", ", ".join(self.columns)
            )
