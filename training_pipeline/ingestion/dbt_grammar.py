"""The staging parsers' grammar, rendered from the dbt macros themselves for ingestion's SQL.

The row contract (``row_contract.py``) must judge a timestamp exactly as staging will
read it: a value staging parses is never refused at ingestion, and a value refused at
ingestion is one staging would have accepted as a date beyond the bounds.  Two
grammars (a Python one here, the Jinja one in ``dbt_project/macros``) would drift apart,
so there is one: the macro files are plain Jinja (``set``, ``~`` and string literals,
nothing from dbt's context), rendered here with jinja2 into the same DuckDB expression
dbt puts into the staging views, and evaluated set-based inside DuckDB.
"""

from __future__ import annotations

from functools import cache

import jinja2

from training_pipeline.ingestion.warehouse import quote_identifier
from training_pipeline.settings import DBT_PROJECT_DIR

MACRO_DIR = DBT_PROJECT_DIR / "macros"


class UnknownParser(ValueError):
    """A contract names a parser that is not a macro in dbt_project/macros."""


@cache
def _macro(name: str) -> jinja2.runtime.Macro:
    path = MACRO_DIR / f"{name}.sql"
    if not name.isidentifier() or not path.is_file():
        raise UnknownParser(
            f"no staging parser {name!r}: expected a macro file {path} defining {name}()"
        )
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    module = environment.from_string(path.read_text(encoding="utf-8")).module
    macro = getattr(module, name, None)
    if macro is None:
        raise UnknownParser(f"{path} does not define the macro {name}()")
    return macro


def parse_sql(parser: str, column: str) -> str:
    """The DuckDB expression staging uses to parse ``column`` with the ``parser`` macro."""
    return str(_macro(parser)(quote_identifier(column))).strip()
