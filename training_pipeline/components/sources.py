"""``Sources``: one system's feeds, declared in YAML, each built into its raw asset.

A declaration names a system (the dbt source name and staging prefix) and its sources;
the pure ``SourceSystem`` spec validates them when the definitions load, and each
source's kind builds its asset, checks and resource (``assets/sources.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import dagster as dg
import pydantic
from pydantic import PrivateAttr

from training_pipeline.assets.sources import build_source_defs
from training_pipeline.components.base import ProjectComponent, current_settings
from training_pipeline.components.errors import DeclarationError, Location, problems_of
from training_pipeline.dbt_sources import DeclaredSystem
from training_pipeline.environment import value_of
from training_pipeline.spec.errors import FieldError, FieldProblem
from training_pipeline.spec.sources import FilesSource, Source, SourceSystem

if TYPE_CHECKING:
    from training_pipeline.components.loader import LoadedProject

# Kept as plain data here (templates still resolve), so that every message about a
# source comes from the spec, with the source's position and field.
_SourceList = Annotated[
    list[dict[str, Any]],
    dg.Resolver(
        lambda context, value: context.resolve_value(value), model_field_type=list[dict[str, Any]]
    ),
]


class Sources(ProjectComponent):
    """The sources of one system: files landing in a folder, database tables, HTTP APIs."""

    namespace: ClassVar[str] = "source"
    name_field: ClassVar[str] = "system"

    system: str
    owner: str | None = None
    description: str | None = None
    sources: _SourceList

    _spec: SourceSystem | None = PrivateAttr(default=None)

    @classmethod
    def describe_instance(cls, raw_attributes: object) -> str | None:
        system = raw_attributes.get("system") if isinstance(raw_attributes, dict) else None
        return f"system {system!r}" if isinstance(system, str) else None

    @classmethod
    def load(cls, attributes: pydantic.BaseModel | None, context: dg.ComponentLoadContext):
        component = super().load(attributes, context)
        try:
            component._spec = SourceSystem.model_validate(
                component.model_dump(include={"system", "owner", "description", "sources"})
            )
        except pydantic.ValidationError as error:
            problems = problems_of(error, SourceSystem)
            where = naming_the_source(component.location, problems, component.sources)
            raise DeclarationError(where, problems) from error
        try:
            component._spec = component._spec.landings_from(value_of)
        except FieldError as error:
            where = naming_the_source(component.location, [error.problem], component.sources)
            raise DeclarationError(where, [error.problem]) from error
        return component

    @property
    def spec(self) -> SourceSystem:
        if self._spec is None:
            raise RuntimeError(f"{self!r} was not loaded from a project's defs/ folder")
        return self._spec

    def declared_names(self) -> tuple[str, ...]:
        """Source names are unique across every system of the project."""
        return tuple(source.name for source in self.spec.sources)

    def claimed_names(self) -> tuple[tuple[str, str], ...]:
        """Landing folders are unique too: two files sources sharing one would each take
        the other's deliveries."""
        files = [source for source in self.spec.sources if isinstance(source, FilesSource)]
        folders = tuple(("files source landing folder", source.landing_folder) for source in files)
        prefixes = tuple(
            ("files source landing prefix", source.landing_url)
            for source in files
            if source.landing_url is not None
        )
        return super().claimed_names() + folders + prefixes

    def build_project_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        settings = current_settings()
        return dg.Definitions.merge(
            *(
                build_source_defs(self.spec, position, settings, self.location.file)
                for position in range(len(self.spec.sources))
            )
        )


def naming_the_source(
    location: Location, problems: Sequence[FieldProblem], sources: Sequence[object]
) -> Location:
    """``location`` with the name of the source every problem lies in (``sources.<i>``),
    so that a message names the file, the system, the source and the field."""
    positions = {tuple(problem.field.split(".")[:2]) for problem in problems}
    if len(positions) != 1:
        return location
    ((head, *index),) = positions
    if head != "sources" or not index or not index[0].isdigit() or int(index[0]) >= len(sources):
        return location
    source = sources[int(index[0])]
    name = source.get("name") if isinstance(source, dict) else None
    if not isinstance(name, str):
        return location
    return replace(location, instance=f"{location.instance}, source {name!r}")


def declared_systems(project: LoadedProject) -> tuple[DeclaredSystem, ...]:
    """Every system the project declares, with the file it is declared in."""
    return tuple(
        DeclaredSystem(component.spec, component.location.file)
        for component in project.components
        if isinstance(component, Sources)
    )


def declared_sources(project: LoadedProject) -> tuple[Source, ...]:
    """Every source the project declares, in every system (the new-data sensor's list)."""
    return tuple(source for system in declared_systems(project) for source in system.spec.sources)
