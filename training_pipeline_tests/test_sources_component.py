"""A ``Sources`` declaration in a project's defs/ folder loads through the project loader,
and a wrong one fails at load naming the file, the system, the source's field and what is
allowed."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from project_folders import project_folder

from training_pipeline.components import COMPONENT_TYPES
from training_pipeline.components.errors import DeclarationError, ProjectError
from training_pipeline.components.loader import load_project
from training_pipeline.settings import Settings

FILES_SOURCE = """
    type: training_pipeline.components.Sources
    attributes:
      system: {system}
      sources:
        - name: {name}
          kind: files
          {extra}
          contract:
            primary_key: [id]
            columns: [id, value]
"""


@pytest.fixture
def project(tmp_path: Path, settings: Settings) -> Settings:
    return replace(settings, project_dir=project_folder(tmp_path / "project"))


def declare(settings: Settings, folder: str, text: str) -> Path:
    path = settings.project_dir / "defs" / folder / "defs.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_a_wrong_source_field_names_the_file_the_system_and_the_field(project):
    path = declare(
        project, "shop", FILES_SOURCE.format(system="shop", name="orders", extra="formats: [xml]")
    )
    with pytest.raises(DeclarationError) as raised:
        load_project(project, COMPONENT_TYPES)
    assert str(raised.value) == (
        f"{path} (document 1, system 'shop', source 'orders'): field sources.0.formats.0: "
        "'xml' is not allowed; "
        "allowed: 'csv', 'jsonl' or 'parquet'"
    )


def test_an_env_template_in_a_source_field_resolves_before_validation(project, monkeypatch):
    monkeypatch.setenv("SOURCES_TEST_SETTLE", "not-a-duration")
    path = declare(
        project,
        "shop",
        FILES_SOURCE.format(
            system="shop",
            name="orders",
            extra="limits: {settle_s: \"{{ env('SOURCES_TEST_SETTLE') }}\"}",
        ),
    )
    with pytest.raises(DeclarationError) as raised:
        load_project(project, COMPONENT_TYPES)
    assert str(raised.value).startswith(
        f"{path} (document 1, system 'shop', source 'orders'): field sources.0.limits.settle_s:"
    )
    assert "'not-a-duration' is not a duration" in str(raised.value)


def test_one_source_name_in_two_systems_names_both_files(project):
    first = declare(project, "shop", FILES_SOURCE.format(system="shop", name="orders", extra=""))
    second = declare(project, "erp", FILES_SOURCE.format(system="erp", name="orders", extra=""))
    with pytest.raises(ProjectError) as raised:
        load_project(project, COMPONENT_TYPES)
    assert "source name 'orders' is declared more than once" in str(raised.value)
    assert str(first) in str(raised.value) and str(second) in str(raised.value)
