"""The Python scan of one delivered file: every record parsed, the first problem named.

DuckDB reads and validates every file (``file_screen.py``); this scan runs only when
DuckDB refuses a file, or a cheap screen finds something DuckDB would accept that the
rules refuse, to explain it: it counts the records independently of DuckDB (a reader
that skips or splits rows shows as a count mismatch) and names the line of the first
problem, which DuckDB's messages often do not.  Column names match the source's
declaration exactly (case included); how DuckDB reads the file is in ``file_select.py``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from training_pipeline.environment import MAX_LINE_BYTES_ENV
from training_pipeline.ingestion.errors import FileRejected
from training_pipeline.ingestion.text_checks import check_utf8_text

SUPPORTED_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}

_JSON_WHITESPACE = " \t\r\n"


@dataclass(frozen=True)
class FileShape:
    records: int
    columns: tuple[str, ...]  # as delivered: CSV header order, JSON keys as first seen
    # Declared columns delivered as something other than text (kept as text; staging parses).
    non_text: dict[str, str] = field(default_factory=dict)


def format_name(path: Path) -> str:
    """The format the extension names, or ``unknown``: what the manifest records."""
    return SUPPORTED_FORMATS.get(path.suffix.lower(), "unknown")


def file_format(path: Path, accepted: Sequence[str] = tuple(SUPPORTED_FORMATS.values())) -> str:
    """The file's format, when its extension names one the source accepts."""
    fmt = SUPPORTED_FORMATS.get(path.suffix.lower())
    if fmt is None or fmt not in accepted:
        extensions = sorted(ext for ext, name in SUPPORTED_FORMATS.items() if name in accepted)
        raise FileRejected(
            f"unsupported file extension {path.suffix!r}; expected one of {', '.join(extensions)}"
        )
    return fmt


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    # O_NOFOLLOW: a file swapped for a link since it was listed is not read through it.
    with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def csv_field_limit(limit: int) -> Iterator[None]:
    # The csv module's limit is process-wide; it is set only for the duration of one read.
    previous = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _inspect_csv(path: Path, max_line_bytes: int, limit_from: str) -> FileShape:
    check_utf8_text(path, max_line_bytes, cr_breaks_lines=True, limit_from=limit_from)
    records, first_problem = 0, None
    # utf-8-sig: a UTF-8 byte-order mark is legitimate and is not part of the first name.
    with csv_field_limit(max_line_bytes), path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, strict=True)
        try:
            header = next(reader, None)
            if not header:
                raise FileRejected("the first line is blank; expected a header row", rows=0)
            for row in reader:
                if not row:
                    continue  # a blank line, skipped by DuckDB too
                records += 1
                if first_problem is None and len(row) != len(header):
                    first_problem = (
                        f"the row ending at line {reader.line_num} has {len(row)} fields where "
                        f"the header has {len(header)} (truncated or malformed)"
                    )
        except csv.Error as error:
            raise FileRejected(f"malformed CSV at line {reader.line_num}: {error}") from None
    if first_problem is not None:
        # Values holding commas ("$1,586.31") split a ';'-delimited row into several
        # fields, which would otherwise read as a truncated file.
        hint = _delimiter_hint(tuple(header))
        raise FileRejected(hint.removeprefix("; ") if hint else first_problem, rows=records)
    return FileShape(records, tuple(header))


class _JsonObject(dict):
    duplicates: tuple[str, ...] = ()


def _json_object(pairs: list[tuple[str, object]]) -> _JsonObject:
    obj = _JsonObject(pairs)
    if len(obj) != len(pairs):
        keys = [k for k, _ in pairs]
        obj.duplicates = tuple(sorted({k for k in keys if keys.count(k) > 1}))
    return obj


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


_JSON_TYPES = {bool: "boolean", int: "number", float: "number"}


def _json_record_problem(
    text: str, declared: tuple[str, ...], keys: dict[str, None], non_text: dict[str, str]
) -> str | None:
    try:
        record = json.loads(text, object_pairs_hook=_json_object, parse_constant=_reject_constant)
    except ValueError as error:
        return f"not valid JSON ({error})"
    except RecursionError:
        return "not valid JSON (nested too deeply)"
    if not isinstance(record, dict):
        return f"not a JSON object (found {type(record).__name__})"
    if record.duplicates:
        return f"the keys {list(record.duplicates)} appear more than once"
    keys.update(dict.fromkeys(record))
    for column in declared:
        value = record.get(column)
        if isinstance(value, (dict, list)):
            return f"column {column!r} holds a nested value; a scalar is required"
        if value is not None and not isinstance(value, str):
            non_text.setdefault(column, _JSON_TYPES[type(value)])
    return None


def _inspect_jsonl(
    path: Path, declared: tuple[str, ...], max_line_bytes: int, limit_from: str
) -> FileShape:
    check_utf8_text(path, max_line_bytes, cr_breaks_lines=False, limit_from=limit_from)
    records, first_problem = 0, None
    keys: dict[str, None] = {}
    non_text: dict[str, str] = {}
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            text = raw.decode("utf-8")
            if number == 1:
                text = text.removeprefix("\ufeff")
            if not text.strip(_JSON_WHITESPACE):
                continue
            records += 1
            if first_problem is None:
                problem = _json_record_problem(text, declared, keys, non_text)
                if problem is not None:
                    first_problem = f"line {number}: {problem}"
    if first_problem is not None:
        raise FileRejected(first_problem, rows=records)
    return FileShape(records, tuple(keys), non_text)


def _is_text(arrow_type: pa.DataType) -> bool:
    if pa.types.is_dictionary(arrow_type):
        return _is_text(arrow_type.value_type)
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


def _is_nested(arrow_type: pa.DataType) -> bool:
    if pa.types.is_dictionary(arrow_type):
        return _is_nested(arrow_type.value_type)
    return pa.types.is_nested(arrow_type)


def parquet_shape(path: Path, declared: tuple[str, ...]) -> FileShape:
    try:
        parquet = pq.ParquetFile(path)
        records, schema = parquet.metadata.num_rows, parquet.schema_arrow
    except (OSError, ValueError, pa.ArrowException) as error:
        raise FileRejected(f"not a readable Parquet file: {error}") from None
    types = {name: schema.field(i).type for i, name in enumerate(schema.names)}
    nested = {c: str(types[c]) for c in declared if c in types and _is_nested(types[c])}
    if nested:
        raise FileRejected(f"columns with nested (non-scalar) types: {nested}", rows=records)
    non_text = {c: str(types[c]) for c in declared if c in types and not _is_text(types[c])}
    return FileShape(records, tuple(schema.names), non_text)


def scan_file(
    path: Path,
    fmt: str,
    declared: tuple[str, ...],
    max_line_bytes: int,
    line_limit_from: str = MAX_LINE_BYTES_ENV,
) -> FileShape:
    """Count and check every record without DuckDB; FileRejected names the first problem.

    ``declared``: the source's columns, whose values must be scalars;
    ``line_limit_from``: where ``max_line_bytes`` was set, named when a line breaks it.
    """
    if path.stat().st_size == 0:
        raise FileRejected("the file is empty (0 bytes)", rows=0)
    if fmt == "csv":
        shape = _inspect_csv(path, max_line_bytes, line_limit_from)
    elif fmt == "jsonl":
        shape = _inspect_jsonl(path, declared, max_line_bytes, line_limit_from)
    else:
        shape = parquet_shape(path, declared)
    if shape.records == 0:
        raise FileRejected("the file holds no data rows (a header or blank lines only)", rows=0)
    return shape


def count_records(path: Path, fmt: str, max_line_bytes: int) -> int:
    """Data records in the file, counted without DuckDB."""
    return scan_file(path, fmt, (), max_line_bytes).records


def _delimiter_hint(columns: tuple[str, ...]) -> str:
    if len(columns) == 1:
        for delimiter, name in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
            if delimiter in columns[0]:
                return f"; the header looks {name}-delimited, but only ',' is accepted"
    return ""


def _ambiguous_names(columns: tuple[str, ...]) -> list[list[str]]:
    """Groups of names that are equal ignoring case: SQL engines (DuckDB included) match
    names that way, or rename one of them (``order_id_1``), so which is read is a guess."""
    groups: dict[str, list[str]] = {}
    for name in columns:
        groups.setdefault(name.casefold(), []).append(name)
    return [group for group in groups.values() if len(group) > 1]


def check_columns(
    shape: FileShape, declared: tuple[str, ...], required: tuple[str, ...]
) -> tuple[str, ...]:
    """Raise when required columns are missing or names are ambiguous (a declared name
    twice, or names differing only by case); return the undeclared columns."""
    missing = [c for c in required if c not in shape.columns]
    if missing:
        found = [clip(c, 80) for c in shape.columns][:20]
        raise FileRejected(
            f"missing required columns {missing}; found {found}{_delimiter_hint(shape.columns)}",
            rows=shape.records,
        )
    doubled = [c for c in declared if shape.columns.count(c) > 1]
    if doubled:
        kind = "required" if set(doubled) <= set(required) else "declared"
        raise FileRejected(f"{kind} columns appear more than once: {doubled}", rows=shape.records)
    ambiguous = _ambiguous_names(shape.columns)
    if ambiguous:
        named = "; ".join(" and ".join(repr(clip(c, 80)) for c in group) for group in ambiguous)
        raise FileRejected(
            f"ambiguous column names: {named} (names must differ by more than case); "
            "which one holds the data cannot be known",
            rows=shape.records,
        )
    return tuple(dict.fromkeys(c for c in shape.columns if c not in declared))


def clip(text: str, limit: int = 500) -> str:
    """Messages quote names and values from the file; a huge one is cut, not repeated whole."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"
