"""Where the churn example's declared sources are, so the demo writes what they read.

The CRM URL, the ticket API's base URL and the order files' landing folder are not
settings of the pipeline: each comes from its source's declaration in the configured
project (``examples/defs/churn/{crm,support,shop}/defs.yaml``), resolved as the pipeline
resolves it: the variable the declaration names when it is set (already checked when
the command started, ``source_declarations.py``), else the declaration's default.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from training_pipeline.environment import value_of
from training_pipeline.settings import Settings
from training_pipeline.source_declarations import systems_in
from training_pipeline.spec.sources import FilesSource, HttpApiSource, Source, SqlTableSource

CRM = "crm_customers"
TICKETS = "tickets"
ORDERS = "orders"

S = TypeVar("S", bound=Source)


def declared_source(settings: Settings, name: str, kind: type[S]) -> S:
    """The project's declaration of source ``name``.

    Raises:
        ValueError: the project declares no such source, or one of another kind.
    """
    defs_dir = settings.project_dir / "defs"
    found = [s for system in systems_in(defs_dir) for s in system.sources if s.name == name]
    if not found or not isinstance(found[0], kind):
        what = f"a {found[0].kind} source" if found else "no source"
        raise ValueError(
            f"the project {settings.project_dir} declares {what} named {name!r}; the churn "
            "demo writes the churn example's sources (examples/defs/churn/)"
        )
    return found[0]


def _resolved(variable: str, default: str | None, name: str) -> str:
    url = value_of(variable) or default
    if url is None:
        raise ValueError(f"{variable} is not set and source {name!r} declares no default")
    return url


def crm_url(settings: Settings) -> str:
    """The CRM database: ``url_env`` when set, else ``url_default`` in the data dir."""
    source = declared_source(settings, CRM, SqlTableSource)
    return _resolved(source.url_env, source.url_fallback(str(settings.data_dir)), CRM)


def api_url(settings: Settings) -> str:
    """The ticket API's base URL: ``base_url_env`` when set, else its default."""
    source = declared_source(settings, TICKETS, HttpApiSource)
    return _resolved(source.base_url_env, source.base_url_default, TICKETS).rstrip("/")


def api_url_default(settings: Settings) -> str | None:
    """The address the declaration falls back to: where the demo serves its API."""
    default = declared_source(settings, TICKETS, HttpApiSource).base_url_default
    return None if default is None else default.rstrip("/")


def api_url_variable(settings: Settings) -> str:
    return declared_source(settings, TICKETS, HttpApiSource).base_url_env


def orders_landing(settings: Settings) -> Path:
    """The order files' landing folder (``<data>/landing/<landing>``)."""
    return settings.landing_dir_of(declared_source(settings, ORDERS, FilesSource).landing_folder)


def orders_quarantine(settings: Settings) -> Path:
    return settings.quarantine_dir_of(declared_source(settings, ORDERS, FilesSource).landing_folder)
