"""Each declared source's Dagster definitions, built by its kind's factory.

A factory takes the system, the source, the settings and the file the source is
declared in (for messages), and returns the source's raw
asset (``raw/<name>``), its checks and its resource (``source__<name>``); what the
kinds share is in ``assets/source_common.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dagster as dg

from training_pipeline.assets.source_files import build_files_source
from training_pipeline.assets.source_http import build_http_source_defs
from training_pipeline.assets.source_sql import sql_table_defs
from training_pipeline.settings import Settings
from training_pipeline.spec.errors import FieldError
from training_pipeline.spec.sources import KINDS, Source, SourceSystem

SourceDefsFactory = Callable[[SourceSystem, Source, Settings, Path], dg.Definitions]

FACTORIES: dict[str, SourceDefsFactory] = {
    "sql_table": sql_table_defs,  # type: ignore[dict-item]
    "http_api": build_http_source_defs,  # type: ignore[dict-item]
    "files": build_files_source,  # type: ignore[dict-item]
}


def build_source_defs(
    system: SourceSystem, position: int, settings: Settings, declared_in: Path
) -> dg.Definitions:
    source = system.sources[position]
    factory = FACTORIES.get(source.kind)
    if factory is None:
        built = ", ".join(kind for kind in KINDS if kind in FACTORIES) or "none yet"
        raise FieldError(
            f"sources.{position}.kind", f"no engine builds {source.kind!r} sources", built
        )
    try:
        return factory(system, source, settings, declared_in)
    except FieldError as error:  # about a field of this source: say which source
        problem = error.problem
        field = f"sources.{position}.{problem.field}"
        raise FieldError(field, problem.problem, problem.allowed) from error
