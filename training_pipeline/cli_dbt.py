"""``training-pipeline dbt-sources`` and ``dbt-parse``: the project folder's dbt side.

A project folder carries its own dbt models (``<project>/dbt/models``); the dbt sources
its staging models read are generated from its source declarations, and the manifest
the definitions load is parsed into ``<project>/dbt/target``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from training_pipeline.settings import Settings


def _write_sources(settings: Settings, *, check: bool) -> int:
    from training_pipeline.dbt_sources import SOURCES_FILE, render_sources, write_sources
    from training_pipeline.source_declarations import systems_in

    # The project folder's defs/ (components/loader.py); read before dbt can parse.
    try:
        systems = systems_in(settings.project_dir / "defs")
    except ValueError as error:
        print(f"training-pipeline dbt-sources: {error}", file=sys.stderr)
        return 1
    path = settings.project_dir / SOURCES_FILE
    if check:
        if path.is_file() and path.read_text() == render_sources(systems):
            return 0
        print(
            f"training-pipeline dbt-sources: {path} is not what the declarations say; "
            "run `training-pipeline dbt-sources`",
            file=sys.stderr,
        )
        return 1
    path.parent.mkdir(parents=True, exist_ok=True)
    changed = write_sources(systems, path)
    print(f"{'wrote' if changed else 'unchanged:'} {path}")
    return 0


def _dbt_sources(args: argparse.Namespace) -> int:
    return _write_sources(Settings.from_env(), check=args.check)


def _dbt_parse(args: argparse.Namespace) -> int:
    from training_pipeline.project import parse_project

    settings = Settings.from_env()
    written = _write_sources(settings, check=False)
    if written:
        return written
    try:
        manifest = parse_project(settings.project_dir)
    except subprocess.CalledProcessError as error:
        print(
            f"training-pipeline dbt-parse: dbt parse of {settings.dbt_models_dir} failed "
            f"(exit {error.returncode}); dbt's message is above",
            file=sys.stderr,
        )
        return 1
    print(f"parsed {settings.dbt_models_dir} into {manifest}")
    return 0


def add_dbt_commands(commands: argparse._SubParsersAction) -> None:
    sources = commands.add_parser(
        "dbt-sources",
        help="write the dbt sources of the declared sources",
        description="Writes the project folder's dbt sources file (dbt/models/staging/"
        "_declared_sources.yml) from its source declarations: one dbt source per system, "
        "a table per source with its asset key, column descriptions and provenance "
        "columns. --check only compares.",
    )
    sources.add_argument("--check", action="store_true", help="fail when the file differs")
    sources.set_defaults(handler=_dbt_sources)
    parse = commands.add_parser(
        "dbt-parse",
        help="write the dbt sources, then parse the project folder's dbt models",
        description="Runs dbt-sources, writes <project>/dbt/dbt_project.yml (generated from "
        "the repository's dbt_project/, whose macros it uses) and parses the project "
        "folder's dbt models (TRAINING_PIPELINE_PROJECT_DIR/dbt/models) into "
        "<project>/dbt/target/manifest.json, which the definitions load. Run it after "
        "adding or editing SQL or a declaration; dbt re-parses only what changed.",
    )
    parse.set_defaults(handler=_dbt_parse)
