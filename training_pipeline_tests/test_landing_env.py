"""A files source's ``landing_env``: the variable it names, when set, replaces ``landing``
(a local folder on a laptop, an S3 prefix on a cluster, the same declaration); the
variable is checked like a setting, naming the variable, value, source and file.

The S3 case runs on ``moto_server`` and skips without it (``s3_helpers.py``)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_files_sources import declare, materialize, metadata, project, query  # noqa: F401

from training_pipeline.components import COMPONENT_TYPES
from training_pipeline.components.errors import DeclarationError
from training_pipeline.components.loader import load_project
from training_pipeline.components.sources import declared_sources
from training_pipeline.environment import SettingsError
from training_pipeline.settings import Settings
from training_pipeline.source_declarations import check_settings
from training_pipeline.spec.errors import FieldError
from training_pipeline.spec.sources import FilesSource

VARIABLE = "TRAINING_PIPELINE_MET_LANDING"

WEATHER = f"""
    type: training_pipeline.components.Sources
    attributes:
      system: met
      sources:
        - name: weather
          kind: files
          landing: met_drops
          landing_env: {VARIABLE}
          limits: {{settle_s: 0s}}
          contract:
            primary_key: [day]
            columns: [day, temp_c]
"""


def weather_source(project: Settings) -> FilesSource:  # noqa: F811
    (source,) = declared_sources(load_project(project, COMPONENT_TYPES))
    assert isinstance(source, FilesSource)
    return source


def landing_of(project: Settings) -> tuple[str | None, str | None, str]:  # noqa: F811
    """The loaded source's landing, S3 prefix (or None) and local folder name."""
    source = weather_source(project)
    return source.landing, source.landing_url, source.landing_folder


def env_of(project: Settings, **variables: str) -> dict[str, str]:  # noqa: F811
    return {"TRAINING_PIPELINE_PROJECT_DIR": str(project.project_dir), **variables}


@pytest.mark.integration
def test_with_the_variable_unset_the_declared_local_folder_is_the_landing(
    project: Settings,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.delenv(VARIABLE, raising=False)
    declare(project, "met", WEATHER)
    assert landing_of(project) == ("met_drops", None, "met_drops")
    drops = project.landing_dir_of("met_drops")
    drops.mkdir(parents=True)
    (drops / "day1.csv").write_text("day,temp_c\n2026-01-01,4.5\n")
    result = materialize(project, load_project(project, COMPONENT_TYPES))
    assert result.success
    assert query(project, "select _source_ref from raw.weather") == [("day1.csv",)]


def test_a_folder_name_in_the_variable_replaces_the_declared_folder(
    project: Settings,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv(VARIABLE, " other_drops ")
    declare(project, "met", WEATHER)
    assert landing_of(project) == ("other_drops", None, "other_drops")


@pytest.mark.integration
def test_an_s3_prefix_in_the_variable_is_where_the_declared_source_is_ingested_from(
    project: Settings,  # noqa: F811
    s3_bucket,
    monkeypatch: pytest.MonkeyPatch,
):
    bucket, fs = s3_bucket
    url = f"s3://{bucket}/met/weather/"
    monkeypatch.setenv(VARIABLE, url)
    declare(project, "met", WEATHER)
    assert check_settings(env_of(project, **{VARIABLE: url})) == []
    assert weather_source(project).landing_url == url
    fs.pipe_file(url + "day1.csv", b"day,temp_c\n2026-01-01,4.5\n")
    # A file in the declared local folder is not read while the variable points at S3.
    drops = project.landing_dir_of("met_drops")
    drops.mkdir(parents=True)
    (drops / "local.csv").write_text("day,temp_c\n2026-01-02,9.9\n")

    result = materialize(project, load_project(project, COMPONENT_TYPES))

    assert result.success
    assert metadata(result)["files_taken"] == [url + "day1.csv"]
    assert query(project, "select day, _source_ref from raw.weather") == [
        ("2026-01-01", url + "day1.csv")
    ]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("../etc", "'../etc' is not one plain folder name"),
        ("s3://Bad_Bucket/x/", "'s3://Bad_Bucket/x/' is not an S3 bucket and prefix"),
        ("s3://bucket/../x/", "'s3://bucket/../x/' is not an S3 bucket and prefix"),
    ],
)
def test_a_bad_landing_in_the_variable_is_refused_naming_the_variable_source_and_file(
    project: Settings,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    value: str,
    problem: str,
):
    path = declare(project, "met", WEATHER)
    with pytest.raises(SettingsError) as refused:
        check_settings(env_of(project, **{VARIABLE: value}))
    message = str(refused.value)
    assert message.startswith(f"{VARIABLE}={value!r} is refused: {problem}")
    assert f"landing_env of source 'weather' in {path}" in message
    assert "s3://bucket/prefix/" in message  # what is allowed

    # Loading without the check first refuses it too, naming the file, source and field.
    monkeypatch.setenv(VARIABLE, value)
    with pytest.raises(DeclarationError) as raised:
        load_project(project, COMPONENT_TYPES)
    loaded = str(raised.value)
    assert str(path) in loaded and "source 'weather'" in loaded
    assert f"sources.0.landing_env: {VARIABLE}={value!r} is refused: {problem}" in loaded


def test_a_landing_variable_a_declaration_names_is_not_reported_as_unknown(
    project: Settings,  # noqa: F811
):
    declare(project, "met", WEATHER)
    assert check_settings(env_of(project, **{VARIABLE: "other_drops"})) == []
    elsewhere = replace(project, project_dir=project.project_dir.parent / "empty")
    (elsewhere.project_dir / "defs").mkdir(parents=True)
    assert check_settings(env_of(elsewhere, **{VARIABLE: "other_drops"})) == [
        f"{VARIABLE} is set but the pipeline reads no such setting; see the README's settings table"
    ]


def test_a_url_where_the_landing_variable_name_belongs_is_refused_as_yaml_holding_a_value():
    with pytest.raises(ValueError, match="landing_env") as refused:
        FilesSource.model_validate(
            {
                "name": "weather",
                "kind": "files",
                "landing_env": "s3://bucket/met/",
                "contract": {"columns": ["day"]},
            }
        )
    assert "looks like a URL" in str(refused.value)


def test_the_pure_spec_applies_the_variable_only_when_the_lookup_finds_it():
    source = FilesSource.model_validate(
        {
            "name": "weather",
            "kind": "files",
            "landing_env": VARIABLE,
            "contract": {"columns": ["day"]},
        }
    )
    assert source.landing_from(lambda name: None) is source
    moved = source.landing_from({VARIABLE: "s3://bucket/met"}.get)
    assert (moved.landing_url, moved.landing_folder) == ("s3://bucket/met/", "weather")
    with pytest.raises(FieldError, match=f"landing_env: {VARIABLE}='a/b' is refused"):
        source.landing_from({VARIABLE: "a/b"}.get)
