"""Load a project folder: the YAML declarations in its ``defs/`` become Dagster definitions.

A project folder (``TRAINING_PIPELINE_PROJECT_DIR``) is data, not a Python package: its
``defs/`` holds ``defs.yaml`` files only, so bringing a new problem or source needs no
Python.  Dagster's own loader (``dg.load_from_defs_folder``) wants an importable package
named in a ``pyproject.toml``; here a synthetic package whose ``__path__`` is the
``defs/`` folder stands in for it, handed to ``ComponentTree.from_module``.

Before Dagster sees the folder it is checked, so that every mistake names its file:
a ``.py`` file (Dagster would import it) is refused, a YAML file Dagster would silently
skip is refused, each document's ``type`` must be one of the component types offered and
its attributes are validated against that type's YAML model, and a template reading an
unset environment variable is reported with its field.  After loading, names must be
unique within each namespace, and both files of a duplicate are named.
"""

from __future__ import annotations

import re
import sys
import types
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pydantic
import yaml
from dagster.components.core.component_tree import ComponentTree, ComponentTreeException

from training_pipeline.components.base import ProjectComponent, loading_with
from training_pipeline.components.errors import (
    DeclarationError,
    FieldProblem,
    Location,
    ProjectError,
    declaration_error_in,
    problems_of,
)
from training_pipeline.environment import PROJECT_DIR_ENV, is_set
from training_pipeline.settings import Settings

DEFS_FOLDER = "defs"
DECLARATION_FILE = "defs.yaml"
SYNTHETIC_MODULE = "training_pipeline_project_defs"
DOCUMENT_KEYS = ("type", "attributes")
# `{{ env('NAME') }}` or `{{ env.NAME }}` without a default fails when NAME is unset.
_ENV_WITHOUT_DEFAULT = re.compile(
    r"env\(\s*['\"]([A-Za-z_][A-Za-z0-9_]*)['\"]\s*\)|env\.([A-Za-z_][A-Za-z0-9_]*)"
)

ComponentTypes = Mapping[str, type[ProjectComponent]]


@dataclass(frozen=True)
class Declaration:
    """One YAML document of a ``defs.yaml``: which component type, and where."""

    location: Location
    component_type: type[ProjectComponent]


@dataclass(frozen=True)
class LoadedProject:
    project_dir: Path
    declarations: tuple[Declaration, ...]
    components: tuple[ProjectComponent, ...]
    defs: dg.Definitions


def _type_names(component_types: ComponentTypes) -> str:
    return ", ".join(sorted(component_types)) or "none yet"


def refuse_python(defs_dir: Path) -> None:
    code = sorted(path for path in defs_dir.rglob("*.py"))
    if code:
        listed = "\n- ".join(str(path) for path in code)
        raise ProjectError(
            f"{defs_dir} holds Python files, which Dagster would import as code:\n- {listed}\n"
            "a project's defs/ folder declares models and sources in defs.yaml files only"
        )


def _yaml_files(defs_dir: Path) -> Iterator[Path]:
    for path in sorted(defs_dir.rglob("*")):
        if path.is_file() and path.suffix in (".yaml", ".yml"):
            yield path


def declaration_files(defs_dir: Path) -> list[Path]:
    """Every ``defs.yaml``, refusing YAML that Dagster would skip without a word."""
    files, skipped = [], []
    for path in _yaml_files(defs_dir):
        if path.name != DECLARATION_FILE:
            skipped.append(f"{path}: only files named {DECLARATION_FILE} are read; rename it")
        elif any((parent / DECLARATION_FILE).is_file() for parent in _parents(path, defs_dir)):
            skipped.append(
                f"{path}: never read, because a folder above it holds a {DECLARATION_FILE}; "
                "give each declaration a folder of its own"
            )
        else:
            files.append(path)
    if skipped:
        raise ProjectError("\n".join(skipped))
    return files


def _parents(path: Path, defs_dir: Path) -> Iterator[Path]:
    folder = path.parent.parent
    while folder.is_relative_to(defs_dir):
        yield folder
        folder = folder.parent


def _unset_templates(value: object, field: str) -> Iterator[FieldProblem]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _unset_templates(item, f"{field}.{key}" if field else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unset_templates(item, f"{field}.{index}")
    elif isinstance(value, str) and "{{" in value:
        for match in _ENV_WITHOUT_DEFAULT.finditer(value):
            name = match.group(1) or match.group(2)
            if not is_set(name):
                yield FieldProblem(
                    field or "attributes",
                    f"reads environment variable {name}, which is not set",
                    f"set {name}, or give a default: env('{name}', 'default')",
                )


def scan_declarations(path: Path, component_types: ComponentTypes) -> list[Declaration]:
    """The documents of one ``defs.yaml``, each checked before Dagster loads it."""
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8"))]
    except yaml.YAMLError as error:
        raise ProjectError(f"{path}: not valid YAML: {error}") from error
    found = []
    for number, document in enumerate(documents, start=1):
        where = Location(path, number, None)
        if not isinstance(document, dict):
            raise DeclarationError(
                where, [FieldProblem("(document)", "is not a mapping", "type: and attributes:")]
            )
        keys = ", ".join(DOCUMENT_KEYS)
        if unknown := sorted(set(document) - set(DOCUMENT_KEYS)):
            raise DeclarationError(where, [FieldProblem(k, "is not a key", keys) for k in unknown])
        component_type = component_types.get(document.get("type"))
        if component_type is None:
            unknown_type = f"unknown component type {document.get('type')!r}"
            allowed = _type_names(component_types)
            raise DeclarationError(where, [FieldProblem("type", unknown_type, allowed)])
        attributes = document.get("attributes") or {}
        where = Location(path, number, component_type.describe_instance(attributes))
        model = component_type.model()
        try:
            model.model_validate(attributes)
        except pydantic.ValidationError as error:
            raise DeclarationError(where, problems_of(error, model)) from error
        if unset := list(_unset_templates(attributes, "")):
            raise DeclarationError(where, unset)
        found.append(Declaration(where, component_type))
    return found


def duplicate_names(components: tuple[ProjectComponent, ...]) -> list[str]:
    claimed: dict[tuple[str, str], list[Location]] = defaultdict(list)
    for component in components:
        for claim in component.claimed_names():
            claimed[claim].append(component.location)
    return [
        f"{namespace} name {name!r} is declared more than once: "
        + " and ".join(f"{where.file} (document {where.document})" for where in places)
        for (namespace, name), places in sorted(claimed.items())
        if len(places) > 1
    ]


def _defs_module(defs_dir: Path) -> types.ModuleType:
    # YAML only: no __init__.py, so nothing in the folder is ever imported as code.
    module = types.ModuleType(SYNTHETIC_MODULE)
    module.__path__ = [str(defs_dir)]
    module.__file__ = None
    sys.modules[SYNTHETIC_MODULE] = module
    return module


def load_project(settings: Settings, component_types: ComponentTypes) -> LoadedProject:
    """The definitions declared in ``settings.project_dir/defs``.

    Raises:
        ProjectError: the folder is missing, holds Python or YAML that would be skipped,
            or two declarations claim one name (both files named).
        DeclarationError: a declaration is wrong (file, instance, field, what is allowed).
    """
    project_dir = settings.project_dir
    defs_dir = project_dir / DEFS_FOLDER
    if not defs_dir.is_dir():
        raise ProjectError(
            f"the project folder {project_dir} ({PROJECT_DIR_ENV}) has no {DEFS_FOLDER}/ "
            "folder of declarations; create it (it may be empty)"
        )
    refuse_python(defs_dir)
    declarations = tuple(
        declaration
        for path in declaration_files(defs_dir)
        for declaration in scan_declarations(path, component_types)
    )
    if not declarations:
        return LoadedProject(project_dir, (), (), dg.Definitions())
    tree = ComponentTree.from_module(defs_module=_defs_module(defs_dir), project_root=project_dir)
    with loading_with(settings):
        try:
            components = tuple(tree.get_all_components(of_type=ProjectComponent))
            if duplicates := duplicate_names(components):
                raise ProjectError("\n".join(duplicates))
            defs = tree.build_defs()
        except ComponentTreeException as error:
            found = declaration_error_in(error)
            if found is None:
                raise
            raise DeclarationError(found.location, found.problems) from error
    return LoadedProject(project_dir, declarations, components, defs)
