"""Errors in a project's declarations, each naming the file, the instance and the field.

Dagster reports some YAML mistakes with the file and line, others (a value outside a
``Literal``, a cross-field rule, a failure while building) with neither; a user fixing
a declaration needs all three plus what the field allows, so every error from a
declaration becomes a ``DeclarationError`` with that shape.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pydantic
from dagster.components.resolved.errors import ResolutionException

from training_pipeline.spec.errors import FieldError, FieldProblem

# Dagster names the failing attribute of a nested model as "<file>:<line> - attributes.<path>".
_RESOLVER_PATH = re.compile(r" - attributes\.([\w.\[\]]+)")


@dataclass(frozen=True)
class Location:
    """Where a declaration is: its file and its place in it (YAML files may hold several)."""

    file: Path
    document: int  # 1-based, as a person counts the documents of a file
    instance: str | None  # e.g. "model 'churn'"; None while the name is unknown

    def __str__(self) -> str:
        named = f", {self.instance}" if self.instance else ""
        return f"{self.file} (document {self.document}{named})"


class DeclarationError(ValueError):
    """A declaration in the project's defs/ folder is wrong; names file, instance, fields."""

    def __init__(self, location: Location, problems: Sequence[FieldProblem]) -> None:
        self.location = location
        self.problems = tuple(problems)
        lines = [str(problem) for problem in self.problems]
        body = lines[0] if len(lines) == 1 else "\n- " + "\n- ".join(lines)
        super().__init__(f"{location}: {body}")


class ProjectError(ValueError):
    """The project folder as a whole is unusable (missing folder, Python code, duplicates)."""


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _nested_model(annotation: object) -> type[pydantic.BaseModel] | None:
    """The pydantic model inside ``Model``, ``Model | None`` or ``Model | str``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for argument in typing.get_args(annotation):
            if found := _nested_model(argument):
                return found
    return None


def _fields_at(model: type[pydantic.BaseModel], path: Sequence[str | int]) -> list[str] | None:
    """The field names of the (nested) model at ``path``; None where it is not a model."""
    for part in path:
        field = model.model_fields.get(str(part))
        nested = _nested_model(field.annotation) if field else None
        if nested is None:
            return None
        model = nested
    return sorted(model.model_fields)


# Every field of a component's YAML model also accepts text (a template), so pydantic
# reports a bad nested value once per alternative, tagged with the alternative's name.
_TEMPLATE_ALTERNATIVE = "str"


def _field_path(loc: Sequence[str | int], model: type | None) -> tuple[list, bool]:
    """``loc`` without union tags, and whether it went through the template alternative."""
    path: list[str | int] = []
    through_template = False
    current = model
    for position, part in enumerate(loc):
        fields = current.model_fields if isinstance(current, type) else {}
        if part == _TEMPLATE_ALTERNATIVE and part not in fields:
            through_template = True
        elif isinstance(part, int) or part in fields or position == len(loc) - 1:
            path.append(part)
            field = fields.get(part) if isinstance(part, str) else None
            current = _nested_model(field.annotation) if field else None
    return path, through_template


def _problems(errors: list[dict], prefix: Sequence[str | int], model: type | None) -> list:
    paths = [_field_path(error["loc"], model) for error in errors]
    direct = [(e, p) for e, (p, template) in zip(errors, paths, strict=True) if not template]
    chosen = direct or [(e, p) for e, (p, _) in zip(errors, paths, strict=True)]
    return [_problem(error | {"loc": tuple(path)}, prefix, model) for error, path in chosen]


def _problem(error: dict, prefix: Sequence[str | int], model: type | None) -> FieldProblem:
    loc = [*prefix, *error["loc"]]
    field = ".".join(str(part) for part in loc) or "attributes"
    kind = error["type"]
    if kind == "missing":
        return FieldProblem(field, "is required and missing")
    if kind == "extra_forbidden":
        known = _fields_at(model, loc[:-1]) if model else None
        close = difflib.get_close_matches(str(loc[-1]), known or [], n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return FieldProblem(field, f"is not a field{hint}", ", ".join(known) if known else None)
    if kind == "literal_error":
        return FieldProblem(field, f"{error['input']!r} is not allowed", error["ctx"]["expected"])
    if kind == "string_pattern_mismatch":
        pattern = error["ctx"]["pattern"]
        return FieldProblem(field, f"{error['input']!r} does not match", f"text matching {pattern}")
    raised = error.get("ctx", {}).get("error")
    if isinstance(raised, FieldError):  # from a validator: pydantic keeps the exception
        return replace(raised.problem, field=".".join(map(str, [*loc, raised.problem.field])))
    message = error["msg"].removeprefix("Value error, ")
    shown = "" if kind == "value_error" else f" (got {error['input']!r})"
    return FieldProblem(field, message + shown)


def problems_of(error: BaseException, model: type | None = None) -> list[FieldProblem]:
    """What ``error`` (or its causes) says about the declaration's fields.

    ``model`` is the model the attributes were validated against, used to list the fields
    allowed where an unknown one was given.
    """
    prefix: list[str] = []
    for cause in _causes(error):
        if isinstance(cause, FieldError):
            return [cause.problem]
        match = _RESOLVER_PATH.search(str(cause))
        if isinstance(cause, ResolutionException) and match and not prefix:
            prefix = match.group(1).split(".")
        if isinstance(cause, pydantic.ValidationError):
            return _problems(cause.errors(), prefix, model if not prefix else None)
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return [FieldProblem(".".join(prefix) or "attributes", first_line)]


def declaration_error_in(error: BaseException) -> DeclarationError | None:
    return next((c for c in _causes(error) if isinstance(c, DeclarationError)), None)
