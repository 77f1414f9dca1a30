"""The project's source declarations read straight from YAML, and the variables they name.

Not through the project loader, which builds every asset (and needs the dbt manifest):
``training-pipeline dbt-sources`` writes that manifest's sources from these, and every
command checks the variables they name before it does anything.

A declaration names the environment variable that holds a source's URL (``url_env``,
``base_url_env``) or a files source's landing (``landing_env``).  Such a variable is
checked like a setting (``environment.py``), when the definitions load and before any
command runs: a value that is not a SQLAlchemy URL (``sql_table``), an http(s) URL with
a host (``http_api``) or a landing folder name or ``s3://`` prefix (``files``) is
refused with the variable, the masked value, the source and the declaration file, and
a ``TRAINING_PIPELINE_*`` variable a declaration names is not "unknown".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pydantic
import yaml

from training_pipeline.environment import (
    PROJECT_DIR_ENV,
    SettingsError,
    Variable,
    check_environment,
    read,
)
from training_pipeline.masking import password_masked
from training_pipeline.setting_parsers import database_url, http_url
from training_pipeline.settings import DEFAULT_PROJECT_DIR
from training_pipeline.spec.source_fields import (
    ENV_NAME_PATTERN,
    LANDING_ALLOWED,
    landing_location,
)
from training_pipeline.spec.sources import SourceSystem

SOURCES_TYPE = "training_pipeline.components.Sources"
DECLARATION_FILE = "defs.yaml"

# Per kind: the field naming the variable, how its value must parse, what is allowed.
VARIABLE_FIELDS: dict[str, tuple[str, Callable[[str], str], str]] = {
    "sql_table": (
        "url_env",
        database_url,
        "expected a SQLAlchemy URL such as sqlite:////abs/db.sqlite or "
        "postgresql+psycopg://user@host/db",
    ),
    "http_api": ("base_url_env", http_url, "expected an http:// or https:// URL with a host"),
    "files": (
        "landing_env",
        lambda text: landing_location(text.strip()),
        f"expected {LANDING_ALLOWED}",
    ),
}


def _source_documents(
    defs_dir: Path, *, skip_invalid_yaml: bool = False
) -> Iterator[tuple[Path, dict]]:
    """Each ``Sources`` document's attributes, with its file.

    Raises:
        ValueError: a file is not valid YAML (unless ``skip_invalid_yaml``).
    """
    for path in sorted(defs_dir.rglob(DECLARATION_FILE)):
        try:
            documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except yaml.YAMLError as error:
            if skip_invalid_yaml:
                continue
            raise ValueError(f"{path}: not valid YAML: {error}") from error
        for document in documents:
            if isinstance(document, dict) and document.get("type") == SOURCES_TYPE:
                yield path, document.get("attributes") or {}


def systems_in(defs_dir: Path) -> list[SourceSystem]:
    """The source systems declared under ``defs_dir``, validated.

    Raises:
        ValueError: a declaration is not valid (the definitions' own load names the
            field; this names the file).
    """
    systems = []
    for path, attributes in _source_documents(defs_dir):
        try:
            systems.append(SourceSystem.model_validate(attributes))
        except pydantic.ValidationError as error:
            raise ValueError(f"{path}: not a valid source declaration: {error}") from error
    return systems


def _declared_variables(defs_dir: Path) -> Iterator[tuple[str, str, str, Path]]:
    """(variable, kind, source name, file) for every variable a declaration names.

    Read leniently: a file that is not YAML, or a source whose kind, name or variable is
    malformed, is left out here, because loading the definitions refuses it naming the
    file and the field.
    """
    for path, attributes in _source_documents(defs_dir, skip_invalid_yaml=True):
        sources = attributes.get("sources") if isinstance(attributes, dict) else None
        for source in sources if isinstance(sources, list) else []:
            if not isinstance(source, dict) or source.get("kind") not in VARIABLE_FIELDS:
                continue
            variable = source.get(VARIABLE_FIELDS[source["kind"]][0])
            if isinstance(variable, str) and re.match(ENV_NAME_PATTERN, variable):
                yield variable, source["kind"], str(source.get("name")), path


def _parse_all(parsers: list[Callable[[str], str]]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        for parser in parsers:
            parser(text)
        return text.strip()

    return parse


def declared_variables(defs_dir: Path) -> dict[str, Variable]:
    """Every variable the declarations under ``defs_dir`` name, as a checkable
    ``Variable`` whose message names each source that reads it and its file."""
    uses: dict[str, list[tuple[str, str, Path]]] = {}
    for variable, kind, name, path in _declared_variables(defs_dir):
        uses.setdefault(variable, []).append((kind, name, path))
    declared = {}
    for variable, used in uses.items():
        kinds = sorted({kind for kind, _, _ in used})
        named_by = "; ".join(
            f"{VARIABLE_FIELDS[kind][0]} of source {name!r} in {path}" for kind, name, path in used
        )
        allowed = " and ".join(VARIABLE_FIELDS[kind][2] for kind in kinds)
        declared[variable] = Variable(
            variable,
            _parse_all([VARIABLE_FIELDS[kind][1] for kind in kinds]),
            f"{allowed} (named by {named_by})",
            None,
            "garbage",
            password_masked,
        )
    return declared


def project_variables(env: Mapping[str, str] | None = None) -> dict[str, Variable]:
    """The variables the configured project's source declarations name.

    With an unusable ``TRAINING_PIPELINE_PROJECT_DIR`` there are none to add: the check
    of the settings refuses that variable itself, beside any other refused one.
    """
    try:
        project_dir = read(PROJECT_DIR_ENV, env) or DEFAULT_PROJECT_DIR
    except SettingsError:
        return {}
    return declared_variables(Path(project_dir).resolve() / "defs")


def check_settings(env: Mapping[str, str] | None = None) -> list[str]:
    """``check_environment`` over the settings and the declared sources' variables.

    Raises:
        SettingsError: one or more values are refused; the message lists each one.
    """
    return check_environment(env, project_variables(env))
