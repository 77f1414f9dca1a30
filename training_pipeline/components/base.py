"""What every component a project may declare shares: its place in the project and the
settings of the load that builds it.

Settings reach components through a context variable that ``load_project`` sets for the
duration of one load: components never read the environment themselves, and
``current_settings()`` outside a load fails instead of quietly reading it.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ClassVar

import dagster as dg
from dagster.components.resolved.errors import ResolutionException
from pydantic import BaseModel, PrivateAttr

from training_pipeline.components.errors import (
    DeclarationError,
    FieldError,
    Location,
    problems_of,
)
from training_pipeline.settings import Settings

_LOADING: ContextVar[Settings | None] = ContextVar("training_pipeline_settings", default=None)


def current_settings() -> Settings:
    """The settings of the project load in progress.

    Raises:
        RuntimeError: called outside ``load_project`` (e.g. at import time).
    """
    settings = _LOADING.get()
    if settings is None:
        raise RuntimeError(
            "current_settings() is only available while load_project() builds a project's "
            "components; settings are read once, when the definitions load"
        )
    return settings


@contextmanager
def loading_with(settings: Settings) -> Iterator[None]:
    token = _LOADING.set(settings)
    try:
        yield
    finally:
        _LOADING.reset(token)


def location_of(
    component_type: type[ProjectComponent], context: dg.ComponentLoadContext, attributes: Any
) -> Location:
    """The file, document and instance a component is being loaded from."""
    raw = attributes.model_dump() if isinstance(attributes, BaseModel) else attributes or {}
    index = context.component_path.instance_key
    document = index + 1 if isinstance(index, int) else 1
    return Location(context.path / "defs.yaml", document, component_type.describe_instance(raw))


class ProjectComponent(dg.Component, dg.Resolvable, dg.Model):
    """A component a project's defs/ folder may declare.

    Subclasses set ``namespace`` (names are unique within it across the whole project)
    and implement ``build_project_defs``; they raise ``FieldError`` for a bad field and
    the error is reported with the file and instance.  No ``Field`` constraints on
    fields: a constrained field cannot hold a ``{{ env(...) }}`` template (Dagster copies
    the constraint onto the template's text); check values in a validator instead.
    """

    namespace: ClassVar[str]
    name_field: ClassVar[str] = "name"
    _location: Location | None = PrivateAttr(default=None)

    @classmethod
    def describe_instance(cls, raw_attributes: object) -> str | None:
        """``model 'sales'``, from the declaration's text; None when it names none."""
        name = raw_attributes.get(cls.name_field) if isinstance(raw_attributes, dict) else None
        return f"{cls.namespace} {name!r}" if isinstance(name, str) else None

    @property
    def location(self) -> Location:
        if self._location is None:
            raise RuntimeError(f"{self!r} was not loaded from a project's defs/ folder")
        return self._location

    def declared_names(self) -> tuple[str, ...]:
        """The names this declaration claims in its namespace."""
        return (getattr(self, self.name_field),)

    def claimed_names(self) -> tuple[tuple[str, str], ...]:
        """``(namespace, name)`` pairs no other declaration of the project may claim."""
        return tuple((self.namespace, name) for name in self.declared_names())

    @classmethod
    def load(cls, attributes: BaseModel | None, context: dg.ComponentLoadContext):
        location = location_of(cls, context, attributes)
        try:
            component = super().load(attributes, context)
        except (ValueError, ResolutionException) as error:
            if isinstance(error, DeclarationError):
                raise
            raise DeclarationError(location, problems_of(error, cls.model())) from error
        component._location = location
        return component

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        try:
            return self.build_project_defs(context)
        except FieldError as error:
            raise DeclarationError(self.location, [error.problem]) from error

    @abstractmethod
    def build_project_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        """The component's assets, checks, jobs and sensors."""
