"""A project folder of YAML declarations loads as definitions, and every mistake in it
names the file, the declaration, the field and what is allowed.

These tests declare ``Widget``, a component defined in the test package
(loader_components.py), so that the loader's rules are pinned apart from any product
component's (test_model_yaml.py covers ``TrainedModel``).
"""

from __future__ import annotations

import inspect
import shutil
import textwrap
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest
from loader_components import TYPE, Widget
from project_folders import project_folder

from training_pipeline import components
from training_pipeline.components.base import current_settings
from training_pipeline.components.errors import DeclarationError, ProjectError
from training_pipeline.components.loader import load_project
from training_pipeline.settings import DEFAULT_PROJECT_DIR, Settings

TYPES = {TYPE: Widget}


def declare(project: Path, folder: str, *documents: str, name: str = "defs.yaml") -> Path:
    path = project / "defs" / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("---\n".join(textwrap.dedent(d) for d in documents))
    return path


def widget(name: str, extra: str = "") -> str:
    return f"type: {TYPE}\nattributes:\n  name: {name}\n{extra}"


@pytest.fixture
def project(tmp_path: Path, settings: Settings) -> Settings:
    return replace(settings, project_dir=project_folder(tmp_path / "project"))


def keys(defs: dg.Definitions) -> list[str]:
    return sorted(k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys())


def refused(settings: Settings, error: type[Exception] = DeclarationError) -> str:
    with pytest.raises(error) as raised:
        load_project(settings, TYPES)
    return str(raised.value)


def test_a_yaml_only_folder_loads_every_declaration_with_the_settings_of_the_load(
    project, monkeypatch
):
    monkeypatch.setenv("LOADER_TEST_SIZE", "4")
    first = declare(
        project.project_dir,
        "first",
        widget("a", "  size: \"{{ env('LOADER_TEST_SIZE', '3') }}\"\n"),
        widget("b", "  colour: blue\n  parts: {count: 2}\n"),
    )
    declare(project.project_dir, "nested/second", widget("c"))

    loaded = load_project(project, TYPES)

    assert keys(loaded.defs) == ["widgets/a", "widgets/b", "widgets/c"]
    a, b, c = sorted(loaded.components, key=lambda w: w.name)
    assert (a.size, b.colour, b.parts.count) == (4, "blue", 2)
    assert (a.location.file, a.location.document, b.location.document) == (first, 1, 2)
    assert str(c.location).endswith("nested/second/defs.yaml (document 1, widget 'c')")
    spec = loaded.defs.resolve_asset_graph().get(dg.AssetKey(["widgets", "a"]))
    assert spec.description == f"4 red in {project.data_dir}"
    assert not list(project.project_dir.rglob("*.py"))


def test_an_empty_defs_folder_loads_nothing_and_the_shipped_default_loads_its_two_models(
    project, settings
):
    assert load_project(project, TYPES).components == ()
    shipped = load_project(
        replace(settings, project_dir=DEFAULT_PROJECT_DIR), components.COMPONENT_TYPES
    )
    # Resolved with the pipeline's own definitions, which bring the warehouse resources.
    declared = {k.to_user_string() for a in shipped.defs.assets or () for k in a.keys}
    assert {"raw/orders", "raw/crm_customers", "raw/tickets"} <= declared
    assert [c.declared_names() for c in shipped.components if c.namespace == "model"] == [
        ("churn",),
        ("seattle_weather",),
    ]


def test_a_project_without_a_defs_folder_is_refused_naming_the_setting(tmp_path, settings):
    message = refused(replace(settings, project_dir=tmp_path / "nowhere"), ProjectError)
    assert str(tmp_path / "nowhere") in message and "TRAINING_PIPELINE_PROJECT_DIR" in message


def test_a_python_file_in_defs_is_refused_and_never_imported(project, tmp_path):
    declare(project.project_dir, "w", widget("a"))
    marker = tmp_path / "imported"
    code = declare(
        project.project_dir, "w", f"open({str(marker)!r}, 'w').close()\n", name="helpers.py"
    )

    message = refused(project, ProjectError)

    assert str(code) in message and "defs.yaml files only" in message
    assert not marker.exists()


def test_two_declarations_with_one_name_name_both_files(project):
    first = declare(project.project_dir, "one", widget("same"))
    second = declare(project.project_dir, "two", widget("other"), widget("same"))

    message = refused(project, ProjectError)

    assert f"widget name 'same' is declared more than once: {first} (document 1)" in message
    assert f"{second} (document 2)" in message


@pytest.mark.parametrize(
    ("extra", "field", "problem", "allowed"),
    [
        ("  colour: green\n", "colour", "'green' is not allowed", "'red' or 'blue'"),
        ("  colr: red\n", "colr", "is not a field (did you mean colour?)", "colour, name, parts"),
        ("  parts: {count: many}\n", "parts.count", "Input should be a valid integer", None),
        ("  parts: {cont: 2}\n", "parts.cont", "is not a field", "count"),
        ("  size: 11\n", "size", "11 is too big", "1 to 10"),
        (
            "  size: \"{{ env('LOADER_TEST_UNSET') }}\"\n",
            "size",
            "LOADER_TEST_UNSET",
            "set LOADER_TEST_UNSET, or give a default",
        ),
        ("  colour: blue\n  size: 7\n", "size", "cannot be built", "any size but 7 in blue"),
    ],
)
def test_a_bad_field_names_the_file_the_instance_the_field_and_what_is_allowed(
    project, extra, field, problem, allowed
):
    path = declare(project.project_dir, "w", widget("fine"), widget("bad", extra))

    message = refused(project)

    assert message.startswith(f"{path} (document 2, widget 'bad'): field {field}: ")
    assert problem in message
    assert allowed is None or f"allowed: {allowed}" in message


def test_a_missing_field_is_named_with_the_document_it_is_missing_from(project):
    path = declare(project.project_dir, "w", f"type: {TYPE}\nattributes:\n  size: 2\n")

    assert refused(project) == f"{path} (document 1): field name: is required and missing"


def test_an_unknown_component_type_is_refused_listing_the_types_allowed(project):
    path = declare(project.project_dir, "w", "type: loader_components.Widgte\nattributes: {}\n")

    message = refused(project)

    assert message == (
        f"{path} (document 1): field type: unknown component type "
        f"'loader_components.Widgte'; allowed: {TYPE}"
    )
    assert (
        "allowed: training_pipeline.components.Sources, training_pipeline.components.TrainedModel"
        in str(
            pytest.raises(DeclarationError, load_project, project, components.COMPONENT_TYPES).value
        )
    )


def test_a_document_key_that_would_import_code_is_refused(project):
    declare(project.project_dir, "w", widget("a") + "template_vars_module: .vars\n")

    assert "field template_vars_module: is not a key; allowed: type, attributes" in refused(project)


def test_yaml_that_dagster_would_skip_silently_is_refused(project):
    misnamed = declare(project.project_dir, "w", widget("a"), name="model.yaml")
    declare(project.project_dir, "x", widget("b"))
    shadowed = declare(project.project_dir, "x/inner", widget("c"))

    message = refused(project, ProjectError)

    assert f"{misnamed}: only files named defs.yaml are read" in message
    assert f"{shadowed}: never read, because a folder above it holds a defs.yaml" in message


def test_settings_reach_components_only_during_a_load():
    with pytest.raises(RuntimeError, match="only available while load_project"):
        current_settings()


def test_the_definitions_include_the_project_beside_the_pipeline(project, monkeypatch):
    from training_pipeline.definitions import build_definitions

    monkeypatch.setitem(components.COMPONENT_TYPES, TYPE, Widget)
    declare(project.project_dir, "w", widget("a"))
    # The pipeline's dbt project reads every declared source system: the project declares them.
    for system in DEFAULT_PROJECT_DIR.glob("defs/*/*"):
        if system.name != "model":
            shutil.copytree(system, project.project_dir / system.relative_to(DEFAULT_PROJECT_DIR))

    assert {"widgets/a", "raw/orders"} <= set(keys(build_definitions(project)))


def test_the_component_tree_api_the_loader_relies_on_is_where_it_was():
    # Not re-exported by dagster: a release that moves it fails here, not at a user's load.
    from dagster.components.core.component_tree import ComponentTree, ComponentTreeException

    parameters = inspect.signature(ComponentTree.from_module).parameters
    assert list(parameters) == ["defs_module", "project_root"]
    assert callable(ComponentTree.get_all_components) and callable(ComponentTree.build_defs)
    assert issubclass(ComponentTreeException, Exception)
