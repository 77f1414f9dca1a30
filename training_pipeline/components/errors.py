"""Errors in a project's declarations, each naming the file, the instance and the field.

Dagster reports some YAML mistakes with the file and line, others (a value outside a
``Literal``, a cross-field rule, a failure while building) with neither; a user fixing
a declaration needs all three plus what the field allows, so every error from a
declaration becomes a ``DeclarationError`` with that shape.
"""

from __future__ import annotations

import difflib
import re
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
    instance: str | None  # e.g. "model 'sales'"; None while the name is unknown

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


def _models_in(annotation: object) -> list[type[pydantic.BaseModel]]:
    """Every pydantic model inside ``Model``, ``Model | None``, ``list[Model]``,
    ``dict[str, Model]`` or an annotated union of models."""
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return [annotation]
    return [m for argument in typing.get_args(annotation) for m in _models_in(argument)]


def _tagged(models: list[type[pydantic.BaseModel]], tag: str) -> list[type[pydantic.BaseModel]]:
    """The members of a discriminated union whose ``Literal`` discriminator is ``tag``."""
    return [
        model
        for model in models
        for field in model.model_fields.values()
        if typing.get_origin(field.annotation) is typing.Literal
        and tag in typing.get_args(field.annotation)
    ]


def _union_member(models: list[type[pydantic.BaseModel]], tag: str) -> list:
    """The union members pydantic means by ``tag``: a model's class name (plain unions)
    or the ``Literal`` value of a discriminated union's tag field."""
    return [m for m in models if m.__name__ == tag] or _tagged(models, tag)


# Every field of a component's YAML model also accepts text (a template), so pydantic
# reports a bad nested value once per alternative, tagged with the alternative's name.
_TEMPLATE_ALTERNATIVE = "str"


def _field_path(loc: Sequence[str | int], model: type | None) -> tuple[list, bool, list[str]]:
    """``loc`` as the user wrote it: without pydantic's union tags (a discriminated
    union's tag, the template alternative), whether it went through the template
    alternative, and the fields allowed where its last part sits."""
    path: list[str | int] = []
    through_template = False
    current = _models_in(model)
    allowed: list[str] = []
    for part in loc:
        fields = {name: f for m in current for name, f in m.model_fields.items()}
        allowed = sorted(fields)
        if isinstance(part, str) and part in fields:
            path.append(part)
            current = _models_in(fields[part].annotation)
        elif isinstance(part, str) and (members := _union_member(current, part)):
            current = members  # pydantic names the union member it tried; the user did not
        elif part == _TEMPLATE_ALTERNATIVE:
            through_template = True
        else:
            path.append(part)  # a list index or a mapping key: the models stay the same
    return path, through_template, allowed


def _problems(errors: list[dict], prefix: Sequence[str | int], model: type | None) -> list:
    paths = [_field_path(error["loc"], model) for error in errors]
    direct = [(e, p) for e, p in zip(errors, paths, strict=True) if not p[1]]
    chosen = direct or list(zip(errors, paths, strict=True))
    return [
        _problem(error | {"loc": tuple(path)}, prefix, allowed if model else None)
        for error, (path, _, allowed) in chosen
    ]


def _problem(error: dict, prefix: Sequence[str | int], known: list[str] | None) -> FieldProblem:
    loc = [*prefix, *error["loc"]]
    field = ".".join(str(part) for part in loc) or "attributes"
    kind = error["type"]
    if kind == "missing":
        return FieldProblem(field, "is required and missing")
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), known or [], n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return FieldProblem(field, f"is not a field{hint}", ", ".join(known) if known else None)
    if kind == "union_tag_invalid":
        tag_field = error["ctx"]["discriminator"].strip("'")
        return FieldProblem(
            f"{field}.{tag_field}",
            f"{error['ctx']['tag']!r} is not allowed",
            error["ctx"]["expected_tags"],
        )
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
