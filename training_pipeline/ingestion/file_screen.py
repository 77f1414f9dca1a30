"""Checking a delivered file fast: DuckDB validates, the Python scan only explains.

DuckDB reads every file once, with strict options (``file_select.py``), into the table
the row contract runs on; a file it refuses is then scanned record by record in Python
(``file_formats.scan_file``), which names the line and the problem (or, when it finds
none, DuckDB's own message stands).  Before DuckDB reads a text file, its bytes are
checked in one C-speed pass (``check_utf8_text``: UTF-8, no NUL, line lengths, naming
the line and byte offset).  What DuckDB accepts but the rules refuse is screened
cheaply and sent to the Python scan, which decides:

* CSV: a line ending in the delimiter (DuckDB drops a trailing empty field) and a
  field longer than the line limit (Python's csv refuses it; DuckDB's backstop is
  looser);
* JSON Lines: a ``null`` line, a repeated key, a nested value, NaN or Infinity
  (``file_select``).

So a file is loaded exactly when the Python scan would have passed it and DuckDB read
it, at the cost of one DuckDB read.
"""

from __future__ import annotations

import codecs
import csv
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from training_pipeline.environment import MAX_LINE_BYTES_ENV
from training_pipeline.ingestion.errors import FileRejected
from training_pipeline.ingestion.file_formats import (
    FileShape,
    check_columns,
    csv_field_limit,
    parquet_shape,
    scan_file,
)
from training_pipeline.ingestion.file_select import (
    JSON_KEYS,
    JSON_SUSPECT,
    JSON_TEXT,
    reader_path,
    select_as_text_sql,
)
from training_pipeline.ingestion.text_checks import BLOCK_BYTES, check_utf8_text
from training_pipeline.ingestion.warehouse import quote_identifier
from training_pipeline.settings import LandingLimits
from training_pipeline.spec.contracts import Contract


@dataclass(frozen=True)
class FirstLook:
    """What is known of a file before DuckDB reads it."""

    columns: tuple[str, ...] | None  # CSV header, Parquet names; JSON Lines: None
    scanned: FileShape | None = None  # the Python scan's shape, when it already ran


# One pass finds a delimiter before either break; two substring searches (one per
# break) cost half as much again.
_DELIMITER_ENDING_A_LINE = re.compile(rb",[\r\n]")


def _ends_a_line_with_delimiter(path: Path) -> bool:
    tail = b""
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(BLOCK_BYTES), b""):
            chunk = tail + block
            if _DELIMITER_ENDING_A_LINE.search(chunk):
                return True
            tail = chunk[-1:]
    return tail == b","


def _csv_header(path: Path, max_line_bytes: int) -> tuple[str, ...] | None:
    """The header row as Python's csv reads it; None when it needs the scan's verdict."""
    with csv_field_limit(max_line_bytes), path.open(newline="", encoding="utf-8-sig") as handle:
        try:
            header = next(csv.reader(handle, strict=True), None)
        except csv.Error:
            return None
    return tuple(header) if header else None


def inspect_file(
    path: Path,
    fmt: str,
    declared: tuple[str, ...],
    max_line_bytes: int,
    line_limit_from: str = MAX_LINE_BYTES_ENV,
) -> FirstLook:
    """The checks before DuckDB reads the file; FileRejected names the first problem."""
    if path.stat().st_size == 0:
        raise FileRejected("the file is empty (0 bytes)", rows=0)
    if fmt == "parquet":  # the footer only: cheap, and the scan's own verdict
        shape = parquet_shape(path, declared)
        if shape.records == 0:
            return FirstLook(shape.columns, scan_file(path, fmt, declared, max_line_bytes))
        return FirstLook(shape.columns, shape)
    check_utf8_text(path, max_line_bytes, cr_breaks_lines=fmt == "csv", limit_from=line_limit_from)
    if fmt == "jsonl":
        return FirstLook(None)
    header = _csv_header(path, max_line_bytes)
    if header is None or _ends_a_line_with_delimiter(path):
        shape = scan_file(path, fmt, declared, max_line_bytes, line_limit_from)
        return FirstLook(shape.columns, shape)
    return FirstLook(header)


@contextmanager
def _without_byte_order_mark(path: Path, fmt: str) -> Iterator[Path]:
    """The file as DuckDB can read it.  A UTF-8 byte-order mark is legitimate, but
    DuckDB 1.5's JSON reader refuses it ("BOM is not supported"): such a file is read
    from a copy without the mark, a dot-name beside it (the landing scan skips those,
    and the warehouse may read there)."""
    with path.open("rb") as original:
        if fmt != "jsonl" or original.read(len(codecs.BOM_UTF8)) != codecs.BOM_UTF8:
            yield path
            return
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=f".{path.name}.", suffix=".jsonl"
        ) as copy:
            shutil.copyfileobj(original, copy)
            copy.flush()
            yield Path(copy.name)


class _Unreadable(Exception):
    """DuckDB refused the file; the message is DuckDB's first line."""


def _stage(con: duckdb.DuckDBPyConnection, table: str, path: Path, select: str) -> int:
    """Read the file into ``table`` (temporary); its rows.

    ``_record`` is the record's position in the file: DuckDB keeps a scan's order
    (``preserve_insertion_order``, on by default), which the tests pin.
    """
    try:
        con.execute(
            f"create or replace temp table {table} as "
            f"select row_number() over () as _record, * from ({select})",
            [reader_path(path)],
        ).fetchall()
    except duckdb.OutOfMemoryException:
        raise  # the warehouse's memory limit, not the file: fail loudly, the next run retries
    except duckdb.Error as error:
        # DuckDB reports a corrupt file with many classes (even the bare base class).
        raise _Unreadable(str(error).strip().splitlines()[0]) from None
    ((staged,),) = con.execute(f"select count(*) from {table}").fetchall()
    return staged


def read_checked(
    con: duckdb.DuckDBPyConnection,
    table: str,
    path: Path,
    fmt: str,
    look: FirstLook,
    contract: Contract,
    limits: LandingLimits,
) -> tuple[FileShape, tuple[str, ...]]:
    """Stage the file's declared columns as text in ``table`` and check its shape; the
    shape and the undeclared columns.  FileRejected names the first problem, as the
    Python scan would; the caller's rollback removes ``table``."""
    declared, max_line = contract.names, limits.max_line_bytes

    def scanned() -> FileShape:
        return scan_file(path, fmt, declared, max_line, limits.origins.max_line_bytes)

    select = select_as_text_sql(fmt, look.columns, declared, max_line)
    try:
        with _without_byte_order_mark(path, fmt) as readable:
            staged = _stage(con, table, readable, select)
    except _Unreadable as refused:
        shape = look.scanned or scanned()  # raises with the scan's reason when it has one
        check_columns(shape, declared, contract.required)
        raise FileRejected(f"unreadable {fmt} file: {refused}", rows=shape.records) from None
    shape = _screened_shape(con, table, fmt, look, declared, max_line) or scanned()
    if staged != shape.records:
        raise FileRejected(
            f"row count mismatch: the file holds {shape.records} records but the reader "
            f"produced {staged}",
            rows=shape.records,
        )
    return shape, check_columns(shape, declared, contract.required)


def _screened_shape(
    con: duckdb.DuckDBPyConnection,
    table: str,
    fmt: str,
    look: FirstLook,
    declared: tuple[str, ...],
    max_line_bytes: int,
) -> FileShape | None:
    """The shape of the file DuckDB read into ``table``, or None when the screen finds
    something only the Python scan can judge."""
    if look.scanned is not None:
        return look.scanned
    if fmt == "csv":
        return _csv_shape(con, table, look.columns or (), declared, max_line_bytes)
    return _json_shape(con, table, declared)


def _csv_shape(
    con: duckdb.DuckDBPyConnection,
    table: str,
    header: tuple[str, ...],
    declared: tuple[str, ...],
    max_line_bytes: int,
) -> FileShape | None:
    # Undeclared columns are not read, so only declared fields are measured; a longer
    # undeclared one is still caught by check_utf8_text unless it spans lines.
    read = [quote_identifier(c) for c in declared if c in header]
    too_long = " or ".join(f"length({c}) > {max_line_bytes}" for c in read) or "false"
    ((records, long_field),) = con.execute(
        f"select count(*), coalesce(bool_or({too_long}), false) from {table}"
    ).fetchall()
    return None if long_field or records == 0 else FileShape(records, header)


def _json_shape(
    con: duckdb.DuckDBPyConnection, table: str, declared: tuple[str, ...]
) -> FileShape | None:
    # The first value of a column that is not a JSON string, as text: a boolean reads
    # 'true' or 'false', which no number does.
    firsts = ", ".join(
        f"min(_record) filter (where not {JSON_TEXT}[{i}]), "
        f"arg_min({quote_identifier(c)}, _record) filter (where not {JSON_TEXT}[{i}])"
        for i, c in enumerate(declared, start=1)
    )
    ((records, suspect, *firsts_found),) = con.execute(
        f"select count(*), coalesce(bool_or({JSON_SUSPECT}), false), {firsts} from {table}"
    ).fetchall()
    if suspect or records == 0:
        return None
    keys: dict[str, None] = {}
    for (names,) in con.execute(
        f"select {JSON_KEYS} from {table} group by {JSON_KEYS} order by min(_record)"
    ).fetchall():
        if names is None or len(set(names)) < len(names):  # a null line, a repeated key
            return None
        keys.update(dict.fromkeys(names))
    # As the scan records them: the first record where a column is not text, then
    # declaration order within a record.
    found = [
        (first, i, column, "boolean" if value in ("true", "false") else "number")
        for i, (column, first, value) in enumerate(
            zip(declared, firsts_found[0::2], firsts_found[1::2], strict=True)
        )
        if first is not None
    ]
    non_text = {column: name for _, _, column, name in sorted(found)}
    return FileShape(records, tuple(keys), non_text)
