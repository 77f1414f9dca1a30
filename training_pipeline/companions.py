"""Companions: services a project's example serves beside a run, found by entry point.

A package such as the churn demo registers a companion in the entry-point group
``training_pipeline.companions``; the product names none.  ``run`` and ``ui`` start a
companion only when the configured project declares an ``http_api`` source whose base URL
(its variable, else its default) resolves to the companion's address and nothing
answers there yet, and stop it when they end.  A real API declared at another address
never starts one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from importlib.metadata import entry_points
from typing import Protocol

from training_pipeline.components import COMPONENT_TYPES
from training_pipeline.components.loader import load_project
from training_pipeline.components.sources import Sources
from training_pipeline.environment import value_of
from training_pipeline.settings import Settings
from training_pipeline.spec.sources import HttpApiSource

GROUP = "training_pipeline.companions"


class Companion(Protocol):
    url: str  # the base URL it serves, as a declaration would name it

    def answers(self) -> bool:
        """Whether something already serves ``url`` (then it is left alone)."""
        ...

    def serve(self, settings: Settings) -> AbstractContextManager[object]:
        """Serve ``url`` for the duration of the block; raise naming the address if not."""
        ...


def _normal(url: str) -> str:
    return url.rstrip("/")


def declared_api_urls(settings: Settings) -> set[str]:
    """The base URL each declared ``http_api`` source resolves to."""
    project = load_project(settings, COMPONENT_TYPES)
    sources = (
        source
        for component in project.components
        if isinstance(component, Sources)
        for source in component.spec.sources
        if isinstance(source, HttpApiSource)
    )
    urls = ((value_of(s.base_url_env) or s.base_url_default) for s in sources)
    return {_normal(url) for url in urls if url is not None}


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
    """Serve, for the block, each wanted companion that nothing answers for yet; yields
    the names of those started."""
    wanted = wanted_companions(declared_api_urls(settings), registered_companions())
    started: list[str] = []
    with ExitStack() as stack:
        for name, companion in sorted(wanted.items()):
            if companion.answers():
                continue
            stack.enter_context(companion.serve(settings))
            started.append(name)
        yield started
