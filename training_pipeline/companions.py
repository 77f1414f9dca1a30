"""Companions: services a project's example serves beside a run, found by entry point.

A package such as the churn demo registers a companion in the entry-point group
``training_pipeline.companions``; the product names none.  ``run`` and ``ui`` start a
companion only when the configured project declares an ``http_api`` source whose base URL
(its variable, else its default) resolves to the companion's address, and stop it when
they end.  A real API declared at another address never starts one.

A server already answering at that address is reused only when the companion recognises
it as its own (the demo API of the same data directory); anything else is never taken
for it.  Then the companion is served on a free port and the sources' base-URL variables
point at it for the block (so for every process `run` and `ui` start), unless the user
set that variable to the address: then the held port is an error naming it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Protocol

from training_pipeline.components import COMPONENT_TYPES
from training_pipeline.components.loader import load_project
from training_pipeline.components.sources import Sources
from training_pipeline.environment import handed_on, value_of
from training_pipeline.settings import Settings
from training_pipeline.spec.sources import HttpApiSource

GROUP = "training_pipeline.companions"


class Companion(Protocol):
    url: str  # the base URL it serves, as a declaration would name it

    def is_ours(self, settings: Settings) -> bool:
        """Whether this data directory's own server already answers at ``url``."""
        ...

    def serve(self, settings: Settings, any_port: bool) -> AbstractContextManager[str]:
        """Serve ``url`` for the block and yield the URL served; when its port is held,
        serve on a free port if ``any_port``, else raise naming the address."""
        ...


@dataclass(frozen=True)
class DeclaredApi:
    url: str  # where the declaration resolves to, without a trailing slash
    variable: str  # its base-URL variable
    set_by_user: bool


def _normal(url: str) -> str:
    return url.rstrip("/")


def declared_apis(settings: Settings) -> list[DeclaredApi]:
    """Each declared ``http_api`` source's base URL and variable."""
    project = load_project(settings, COMPONENT_TYPES)
    sources = (
        source
        for component in project.components
        if isinstance(component, Sources)
        for source in component.spec.sources
        if isinstance(source, HttpApiSource)
    )
    apis = []
    for source in sources:
        given = value_of(source.base_url_env)
        url = given or source.base_url_default
        if url is not None:
            apis.append(DeclaredApi(_normal(url), source.base_url_env, given is not None))
    return apis


def declared_api_urls(settings: Settings) -> set[str]:
    """The base URL each declared ``http_api`` source resolves to."""
    return {api.url for api in declared_apis(settings)}


def registered_companions() -> dict[str, Companion]:
    """Every installed companion, by entry-point name."""
    return {point.name: point.load()() for point in entry_points(group=GROUP)}


def wanted_companions(
    declared_urls: set[str], companions: dict[str, Companion]
) -> dict[str, Companion]:
    """The companions whose address a declaration resolves to."""
    return {
        name: companion
        for name, companion in companions.items()
        if _normal(companion.url) in declared_urls
    }


@contextmanager
def companions_for(settings: Settings) -> Iterator[list[str]]:
    """Serve, for the block, each wanted companion unless its own server already answers;
    yields one line per wanted companion saying where it is served."""
    apis = declared_apis(settings)
    wanted = wanted_companions({api.url for api in apis}, registered_companions())
    lines: list[str] = []
    with ExitStack() as stack:
        for name, companion in sorted(wanted.items()):
            address = _normal(companion.url)
            if companion.is_ours(settings):
                lines.append(f"{name}: using the one already serving this data at {address}")
                continue
            users = [api for api in apis if api.url == address]
            pinned = any(api.set_by_user for api in users)
            url = stack.enter_context(companion.serve(settings, any_port=not pinned))
            for api in users:
                stack.enter_context(handed_on(api.variable, url))
            moved = "" if _normal(url) == address else f" ({address} is held by another server)"
            lines.append(f"{name}: serving {url} for this command{moved}")
        yield lines
