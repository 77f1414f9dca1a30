"""How DuckDB reads a delivered file (``file_screen.py`` decides what it must hold).

Names found in a file (a CSV header, JSON keys) never reach SQL: CSV columns are read by
position under generated names, JSON and Parquet columns by the source's declared names,
each quoted.  Every declared column comes out as text, in declaration order; one the file
lacks (an optional column) is NULL.
"""

from __future__ import annotations

import re
from pathlib import Path

from training_pipeline.ingestion.warehouse import quote_identifier

_GLOB_CHARACTERS = re.compile(r"([*?\[])")


def reader_path(path: Path) -> str:
    """The path as DuckDB's readers take it: they expand ``* ? [``, so those are escaped.

    Unescaped, a file named ``orders[1].csv`` would be read as ``orders1.csv``.
    """
    return _GLOB_CHARACTERS.sub(r"[\1]", str(path.absolute()))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# What a JSON Lines record holds besides the declared values, for the screen in
# ``file_screen.py``: its keys (NULL for a ``null`` line), whether each declared value is a
# JSON string, and whether a value needs the Python scan (a nested one, NaN or Infinity,
# which DuckDB accepts).
JSON_KEYS, JSON_TEXT, JSON_SUSPECT = "__json_keys", "__json_text", "__json_suspect"


def select_as_text_sql(
    fmt: str, columns: tuple[str, ...] | None, declared: tuple[str, ...], max_line_bytes: int
) -> str:
    """A SELECT over the file (one ``?``: its reader_path) giving the declared columns as
    text, in declaration order; a column the file lacks (an optional one) is NULL.

    ``columns``: the CSV header or the Parquet names (JSON Lines: None, DuckDB finds the
    keys).  DuckDB's own line limit is a looser backstop (a row may span lines, a
    character up to four bytes): ``check_utf8_text`` enforces the configured one.
    """
    backstop = 4 * max_line_bytes * max(len(columns or declared), 1) + 65536
    if fmt == "jsonl":
        return _select_json_sql(declared, backstop)
    columns = columns or ()
    if fmt == "csv":
        by_position = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(columns)))
        selected = ", ".join(
            f"{_absent(c)}" if c not in columns else f"c{columns.index(c)} as {quote_identifier(c)}"
            for c in declared
        )
        return (
            f"select {selected} from read_csv(?, header = true, auto_detect = false, "
            f"columns = {{{by_position}}}, delim = ',', quote = '\"', escape = '\"', "
            "strict_mode = true, null_padding = false, encoding = 'utf-8', "
            f"compression = 'none', max_line_size = {backstop})"
        )
    selected = ", ".join(
        _absent(c)
        if c not in columns
        else f"cast({quote_identifier(c)} as varchar) as {quote_identifier(c)}"
        for c in declared
    )
    return f"select {selected} from read_parquet(?)"


def _select_json_sql(declared: tuple[str, ...], backstop: int) -> str:
    """Each record read once, as a map of its keys to JSON values: every declared field
    comes out as text (a number in one record and a string in the next is ordinary in
    JSON and is cleaned later, not guessed at here); a key no record holds reads as NULL.
    A line that is not an object makes DuckDB refuse the file."""
    values = [f"m[{_literal(c)}]" for c in declared]
    columns = ", ".join(
        f"{v} ->> '$' as {quote_identifier(c)}" for v, c in zip(values, declared, strict=True)
    )
    # A ``null`` line and a key repeated in a record (DuckDB 1.5 keeps it, 2.0 refuses the
    # file) show in the keys, which the screen reads once per distinct list of them.
    suspect = (
        "list_bool_or(list_transform(map_values(m), lambda v: "
        "left(cast(v as varchar), 1) in ('{', '[') "
        "or cast(v as varchar) in ('NaN', 'Infinity', '-Infinity')))"
    )
    return (
        f"select {columns}, map_keys(m) as {JSON_KEYS}, "
        f"[{', '.join(_is_json_string(v) for v in values)}] as {JSON_TEXT}, "
        f"coalesce({suspect}, false) as {JSON_SUSPECT} "
        "from read_json(?, format = 'newline_delimited', records = false, "
        "columns = {'m': 'MAP(VARCHAR, JSON)'}, compression = 'uncompressed', "
        f"maximum_object_size = {backstop})"
    )


def _is_json_string(value: str) -> str:
    """DuckDB hands each value re-serialized, without whitespace (``1e5`` as
    ``100000.0``), so a JSON string is exactly a value that starts with a quote; a test
    of its first byte costs a fifth of parsing it again with ``json_type``."""
    return f"""starts_with(cast({value} as varchar), '"')"""


def _absent(column: str) -> str:
    return f"cast(null as varchar) as {quote_identifier(column)}"
