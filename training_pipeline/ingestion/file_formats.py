"""Reading one delivered order file with DuckDB's own readers, and counting its records.

The record count is taken independently of the DuckDB reader (Python's csv module,
line counts, Parquet metadata) so that a reader that silently skips or splits rows is
caught as a count mismatch instead of passing unnoticed.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from training_pipeline.ingestion.warehouse import quote_identifier

SUPPORTED_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}

_CSV_OPTIONS = (
    "header = true, all_varchar = true, delim = ',', quote = '\"', escape = '\"', "
    "strict_mode = true, encoding = 'utf-8', null_padding = false"
)

# Nested values cannot be kept as one text value; every scalar type can (timestamps with a
# zone keep their offset in the text, and staging converts them to UTC).
_NESTED_TYPES = ("STRUCT", "MAP", "UNION")


class FileRejected(Exception):
    """A delivered file that cannot be loaded as it is; the message says why."""


def file_format(path: Path) -> str:
    try:
        return SUPPORTED_FORMATS[path.suffix.lower()]
    except KeyError:
        raise FileRejected(
            f"unsupported file extension {path.suffix!r}; expected one of "
            f"{', '.join(sorted(SUPPORTED_FORMATS))}"
        ) from None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def count_records(path: Path, fmt: str) -> int:
    """Data records in the file, counted without DuckDB."""
    if fmt == "parquet":
        try:
            return pq.ParquetFile(path).metadata.num_rows
        except (OSError, ValueError) as error:  # pyarrow raises ArrowInvalid (a ValueError)
            raise FileRejected(f"not a readable Parquet file: {error}") from error
    if fmt == "jsonl":
        with path.open("rb") as handle:
            return sum(1 for line in handle if line.strip())
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = sum(1 for row in csv.reader(handle) if row)
    except UnicodeDecodeError as error:
        raise FileRejected(f"not UTF-8 text: {error}") from error
    except csv.Error as error:
        raise FileRejected(f"malformed CSV: {error}") from error
    return max(rows - 1, 0)


def _reader_sql(fmt: str, columns: tuple[str, ...] | None = None) -> str:
    if fmt == "csv":
        return f"read_csv(?, {_CSV_OPTIONS})"
    if fmt == "jsonl":
        if columns is None:
            return "read_json(?, format = 'newline_delimited')"
        # Read every required field as text: a number in one record and a string in
        # the next is ordinary in JSON and is cleaned later, not guessed at here.
        spec = ", ".join(f"'{c}': 'VARCHAR'" for c in columns)
        return f"read_json(?, format = 'newline_delimited', columns = {{{spec}}})"
    return "read_parquet(?)"


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]


def describe(con: duckdb.DuckDBPyConnection, path: Path, fmt: str) -> dict[str, str]:
    """Column name → DuckDB type as the reader sees the file."""
    try:
        rows = con.execute(f"describe select * from {_reader_sql(fmt)}", [str(path)]).fetchall()
    except duckdb.Error as error:
        raise FileRejected(f"unreadable {fmt} file: {_first_line(error)}") from error
    return {name: col_type for name, col_type, *_ in rows}


def verify_schema(schema: dict[str, str], required: tuple[str, ...], fmt: str) -> list[str]:
    """Raise when required columns are missing or not scalar; return the extra columns."""
    missing = [c for c in required if c not in schema]
    if missing:
        hint = " (is the file comma-delimited with a header row?)" if fmt == "csv" else ""
        raise FileRejected(f"missing required columns {missing}; found {sorted(schema)}{hint}")
    bad_types = {
        c: schema[c]
        for c in required
        if schema[c].startswith(_NESTED_TYPES) or schema[c].endswith("]")
    }
    if bad_types:
        raise FileRejected(f"columns with nested (non-scalar) types: {bad_types}")
    return sorted(set(schema) - set(required))


def select_as_text_sql(fmt: str, required: tuple[str, ...]) -> str:
    """A SELECT over the file yielding the required columns as text, in order."""
    columns = ", ".join(f"cast({quote_identifier(c)} as varchar)" for c in required)
    return f"select {columns} from {_reader_sql(fmt, required)}"
