"""How DuckDB reads a delivered file that passed the Python pass (``file_formats.py``).

Names found in a file (a CSV header, JSON keys) never reach SQL: CSV columns are read by
position under generated names, JSON and Parquet columns by the source's declared names,
each quoted.  Every declared column comes out as text, in declaration order; one the file
lacks (an optional column) is NULL.
"""

from __future__ import annotations

import re
from pathlib import Path

from training_pipeline.ingestion.file_formats import FileShape
from training_pipeline.ingestion.warehouse import quote_identifier

_GLOB_CHARACTERS = re.compile(r"([*?\[])")


def reader_path(path: Path) -> str:
    """The path as DuckDB's readers take it: they expand ``* ? [``, so those are escaped.

    Unescaped, a file named ``orders[1].csv`` would be read as ``orders1.csv``.
    """
    return _GLOB_CHARACTERS.sub(r"[\1]", str(path.absolute()))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def select_as_text_sql(
    fmt: str, shape: FileShape, declared: tuple[str, ...], max_line_bytes: int
) -> str:
    """A SELECT over the file (one ``?``: its reader_path) giving the declared columns as
    text, in declaration order; a column the file lacks (an optional one) is NULL.

    DuckDB's own line limit is a looser backstop (a row may span lines, a character up to
    four bytes): the Python pass enforces the configured one and names the line.
    """
    backstop = 4 * max_line_bytes * max(len(shape.columns), 1) + 65536
    if fmt == "csv":
        by_position = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(shape.columns)))
        columns = ", ".join(
            f"{_absent(c)}"
            if c not in shape.columns
            else f"c{shape.columns.index(c)} as {quote_identifier(c)}"
            for c in declared
        )
        return (
            f"select {columns} from read_csv(?, header = true, auto_detect = false, "
            f"columns = {{{by_position}}}, delim = ',', quote = '\"', escape = '\"', "
            "strict_mode = true, null_padding = false, encoding = 'utf-8', "
            f"compression = 'none', max_line_size = {backstop})"
        )
    if fmt == "jsonl":
        # Every declared field is read as text: a number in one record and a string in
        # the next is ordinary in JSON and is cleaned later, not guessed at here.  A key
        # no record holds reads as NULL.
        spec = ", ".join(f"{_literal(c)}: 'VARCHAR'" for c in declared)
        columns = ", ".join(quote_identifier(c) for c in declared)
        return (
            f"select {columns} from read_json(?, format = 'newline_delimited', "
            f"columns = {{{spec}}}, compression = 'uncompressed', "
            f"maximum_object_size = {backstop})"
        )
    columns = ", ".join(
        _absent(c)
        if c not in shape.columns
        else f"cast({quote_identifier(c)} as varchar) as {quote_identifier(c)}"
        for c in declared
    )
    return f"select {columns} from read_parquet(?)"


def _absent(column: str) -> str:
    return f"cast(null as varchar) as {quote_identifier(column)}"
