"""A new files source declared in YAML alone, in a temporary project, gets everything the
order files get: rows loaded with provenance, bad files quarantined with their reason,
identical re-deliveries skipped, corrected ones loaded, and a ledger of its own that no
other files source sees.  A wrong declaration fails at load naming file, system, field."""

from __future__ import annotations

import json
import os
import textwrap
from dataclasses import replace
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from order_file_helpers import AT, ORDERS, make_dirs, open_warehouse
from project_folders import project_folder

from training_pipeline.components import COMPONENT_TYPES
from training_pipeline.components.errors import DeclarationError, ProjectError
from training_pipeline.components.loader import LoadedProject, load_project
from training_pipeline.components.sources import Sources
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.ingestion.landing_ingest import ingest_landing_folder
from training_pipeline.ingestion.reconciliation import reconcile_files
from training_pipeline.resources import build_resources
from training_pipeline.settings import DuckDBLimits, LandingLimits, Settings
from training_pipeline.spec.sources import FilesSource

WEATHER = """
    type: training_pipeline.components.Sources
    attributes:
      system: met
      owner: team:weather
      description: The met office's daily readings.
      sources:
        - name: weather
          kind: files
          description: One row per day and station reading.
          formats: [csv, parquet]
          {limits}
          contract:
            primary_key: [day]
            columns:
              day: {{parse: parse_date, description: The reading's day.}}
              temp_c: {{}}
              note: {{optional: true}}
"""
AIR = """
    type: training_pipeline.components.Sources
    attributes:
      system: air
      sources:
        - name: air_quality
          kind: files
          landing: {landing}
          contract:
            primary_key: [day]
            columns: [day, pm25]
"""
PROVENANCE = ["_source", "_source_ref", "_batch_id", "_ingested_at"]


@pytest.fixture
def project(tmp_path: Path, settings: Settings) -> Settings:
    return replace(settings, project_dir=project_folder(tmp_path / "project"))


def declare(project: Settings, folder: str, text: str) -> Path:
    path = project.project_dir / "defs" / folder / "defs.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(textwrap.dedent(text))
    return path


def declare_weather(project: Settings, limits: str = "") -> LoadedProject:
    declare(project, "met", WEATHER.format(limits=limits))
    return load_project(project, COMPONENT_TYPES)


def files_source(loaded: LoadedProject, name: str) -> FilesSource:
    (source,) = [
        s
        for c in loaded.components
        if isinstance(c, Sources)
        for s in c.spec.sources
        if s.name == name
    ]
    assert isinstance(source, FilesSource)
    return source


def materialize(project: Settings, loaded: LoadedProject) -> dg.ExecuteInProcessResult:
    """The project's raw assets, with its own resources and the pipeline's shared ones."""
    shared = build_resources(project)
    resources = {k: shared[k] for k in ("warehouse", "row_contract", "alerts")}
    return dg.materialize(
        list(loaded.defs.assets or []),
        resources=resources | dict(loaded.defs.resources or {}),
        raise_on_error=False,
    )


def landing(project: Settings, folder: str) -> Path:
    path = project.data_dir / "landing" / folder
    path.mkdir(parents=True, exist_ok=True)
    return path


def query(project: Settings, sql: str) -> list[tuple]:
    with wh.connect(project.warehouse_path, limits=DuckDBLimits(), read_only=True) as con:
        return con.execute(sql).fetchall()


def metadata(result: dg.ExecuteInProcessResult) -> dict:
    (event,) = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


def checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_a_new_files_source_is_a_raw_asset_with_its_declared_owner_schema_and_checks(project):
    loaded = declare_weather(project)
    (asset,) = loaded.defs.assets
    (spec,) = asset.specs
    assert spec.key == dg.AssetKey(["raw", "weather"])
    assert (spec.group_name, spec.owners, spec.kinds) == (
        "ingestion",
        ["team:weather"],
        {"duckdb", "file"},
    )
    assert spec.description == "One row per day and station reading."
    schema = spec.metadata["dagster/column_schema"]
    assert [c.name for c in schema.columns] == ["day", "temp_c", "note", *PROVENANCE]
    assert schema.columns[0].description == "The reading's day."
    assert set(loaded.defs.resources) == {"source__weather"}
    assert asset.required_resource_keys >= {"source__weather", "warehouse"}
    assert {k.name for k in asset.check_keys} == {
        "no_quarantined_files",
        "rows_reconcile",
        "rows_rejected",
    }


@pytest.mark.integration
def test_csv_and_parquet_files_load_with_provenance_and_an_absent_optional_column_as_null(
    project,
):
    loaded = declare_weather(project)
    folder = landing(project, "weather")
    (folder / "day1.csv").write_text("day,temp_c\n2026-01-01,3.5\n2026-01-02,-1\n")
    pq.write_table(
        pa.table({"day": ["2026-01-03"], "temp_c": [4.25], "note": ["windy"]}),
        folder / "day3.parquet",
    )
    result = materialize(project, loaded)
    assert result.success
    rows = query(
        project,
        "select day, temp_c, note, _source, _source_ref, _batch_id = b.batch_id "
        "from raw.weather, raw.ingestion_batches b order by day",
    )
    assert rows == [
        ("2026-01-01", "3.5", None, "weather", "day1.csv", True),
        ("2026-01-02", "-1", None, "weather", "day1.csv", True),
        ("2026-01-03", "4.25", "windy", "weather", "day3.parquet", True),
    ]
    assert checks(result) == {
        "no_quarantined_files": True,
        "rows_reconcile": True,
        "rows_rejected": True,
    }
    assert metadata(result)["non_text_columns_kept_as_text"] == {"day3.parquet": ["temp_c: double"]}


@pytest.mark.integration
def test_columns_match_by_exact_name_in_any_order_and_a_case_change_is_a_missing_column(
    project,
):
    loaded = declare_weather(project)
    folder = landing(project, "weather")
    (folder / "reordered.csv").write_text("note,temp_c,day,station\ncalm,2,2026-01-05,S1\n")
    (folder / "shouting.csv").write_text("DAY,temp_c\n2026-01-06,1\n")
    result = materialize(project, loaded)
    assert query(project, "select day, temp_c, note from raw.weather") == [
        ("2026-01-05", "2", "calm")
    ]
    assert metadata(result)["extra_columns_ignored"] == {"reordered.csv": ["station"]}
    assert metadata(result)["files_quarantined"] == {
        "shouting.csv": "missing required columns ['day']; found ['DAY', 'temp_c']"
    }


def test_json_lines_without_an_optional_key_load_it_as_null(tmp_path):
    notes = FilesSource.model_validate(
        {
            "name": "notes",
            "kind": "files",
            "formats": ["jsonl"],
            "contract": {"primary_key": ["id"], "columns": {"id": {}, "text": {"optional": True}}},
        }
    )
    landing_dir, quarantine_dir = make_dirs(tmp_path)
    (landing_dir / "a.jsonl").write_text('{"id": "1"}\n{"id": 2, "text": "two"}\n')
    (landing_dir / "b.jsonl").write_text('{"id": "3"}\n')  # no record has the key
    with open_warehouse(tmp_path) as con:
        report = ingest_landing_folder(con, notes, landing_dir, quarantine_dir, "b1", AT)
        assert [o.status for o in report.outcomes] == ["loaded", "loaded"]
        rows = con.execute("select id, text, _source from raw.notes order by id").fetchall()
    assert rows == [("1", None, "notes"), ("2", "two", "notes"), ("3", None, "notes")]


@pytest.mark.integration
def test_a_bad_file_of_a_new_source_is_quarantined_with_its_reason_beside_the_good_one(
    project,
):
    loaded = declare_weather(project)
    folder = landing(project, "weather")
    (folder / "good.csv").write_text("day,temp_c\n2026-01-01,3\n")
    (folder / "readings.jsonl").write_text('{"day": "2026-01-02", "temp_c": "1"}\n')
    (folder / "undated.csv").write_text("temp_c,note\n3,x\n")
    result = materialize(project, loaded)
    assert result.success
    assert checks(result)["no_quarantined_files"] is False
    assert checks(result)["rows_reconcile"] is True
    assert query(project, "select day from raw.weather") == [("2026-01-01",)]
    reasons = {
        p.name.removesuffix(".reason.json"): json.loads(p.read_text())["reason"]
        for p in (project.data_dir / "quarantine" / "weather").rglob("*.reason.json")
    }
    assert reasons == {
        "readings.jsonl": "unsupported file extension '.jsonl'; expected one of .csv, .parquet",
        "undated.csv": "missing required columns ['day']; found ['temp_c', 'note']",
    }
    assert sorted(os.listdir(folder)) == ["good.csv"]


@pytest.mark.integration
def test_an_identical_redelivery_is_skipped_on_rerun_and_a_corrected_one_is_loaded(project):
    loaded = declare_weather(project)
    path = landing(project, "weather") / "day1.csv"
    path.write_text("day,temp_c\n2026-01-01,3\n")
    assert metadata(materialize(project, loaded))["rows_loaded_this_run"] == 1
    copy = path.with_name(".day1.tmp")
    copy.write_bytes(path.read_bytes())
    os.replace(copy, path)  # the same bytes delivered again: new inode and ctime
    again = metadata(materialize(project, loaded))
    assert (again["rows_loaded_this_run"], again["files_skipped_as_identical"]) == (0, 1)
    path.write_text("day,temp_c\n2026-01-01,3.5\n")
    corrected = materialize(project, loaded)
    assert metadata(corrected)["rows_loaded_this_run"] == 1
    assert checks(corrected)["rows_reconcile"] is True
    assert query(project, "select temp_c from raw.weather order by _ingested_at") == [
        ("3",),
        ("3.5",),
    ]


def reasons(project: Settings, folder: str) -> dict[str, str]:
    found = (project.data_dir / "quarantine" / folder).rglob("*.reason.json")
    return {p.name.removesuffix(".reason.json"): json.loads(p.read_text())["reason"] for p in found}


@pytest.mark.integration
def test_a_limit_the_source_declares_overrides_the_projects_and_is_named_when_broken(project):
    loaded = declare_weather(project, limits="limits: {max_file_bytes: 1KiB}")
    path = project.project_dir / "defs" / "met" / "defs.yaml"
    (landing(project, "weather") / "big.csv").write_text("day,temp_c\n" + "2026-01-01,3\n" * 200)
    assert materialize(project, loaded).success
    assert reasons(project, "weather") == {
        "big.csv": "the file is 2611 bytes, over the limit of 1024 bytes "
        f"(limits.max_file_bytes of source 'weather' in {path}); it was not read"
    }


@pytest.mark.integration
def test_a_line_limit_names_the_declaration_field_when_declared_and_the_variable_otherwise(
    project,
):
    line = "2026-01-01," + "9" * 300 + "\n"
    met = declare(project, "met", WEATHER.format(limits="limits: {max_line_bytes: 200}"))
    declare(project, "air", AIR.format(landing="air"))
    # The project's limit (TRAINING_PIPELINE_MAX_LINE_BYTES, read into the settings).
    with_project_limit = replace(project, landing=LandingLimits(max_line_bytes=100, settle_s=0))
    loaded = load_project(with_project_limit, COMPONENT_TYPES)
    (landing(project, "weather") / "long.csv").write_text("day,temp_c\n" + line)
    (landing(project, "air") / "long.csv").write_text("day,pm25\n" + line)
    assert materialize(project, loaded).success
    assert reasons(project, "weather")["long.csv"] == (
        "line 2 is longer than 200 bytes (at least 311), the longest line accepted "
        f"(limits.max_line_bytes of source 'weather' in {met})"
    )
    assert reasons(project, "air")["long.csv"] == (
        "line 2 is longer than 100 bytes (at least 311), the longest line accepted "
        "(TRAINING_PIPELINE_MAX_LINE_BYTES)"
    )


@pytest.mark.integration
def test_a_landing_folder_leading_out_of_the_data_directory_fails_the_run_naming_it(
    project, tmp_path
):
    loaded = declare_weather(project)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "day1.csv").write_text("day,temp_c\n2026-01-01,3\n")
    (project.data_dir / "landing").mkdir(parents=True)
    (project.data_dir / "landing" / "weather").symlink_to(outside)
    result = materialize(project, loaded)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    error = failure.step_failure_data.error
    message = error.cause.message if error.cause else error.message
    assert f"resolves to {outside}, outside the data directory {project.data_dir}" in message
    assert sorted(os.listdir(outside)) == ["day1.csv"]  # neither read nor quarantined


@pytest.mark.integration
def test_two_files_sources_keep_separate_manifests_and_reconciliations(project):
    declare(project, "met", WEATHER.format(limits=""))
    declare(project, "air", AIR.format(landing="air"))
    loaded = load_project(project, COMPONENT_TYPES)
    # The same name and the same bytes delivered to both: each source loads its copy.
    body = "day,temp_c,pm25\n2026-01-01,3,12\n2026-01-02,4,9\n"
    for folder in ("weather", "air"):
        (landing(project, folder) / "day1.csv").write_text(body)
    result = materialize(project, loaded)
    assert result.success
    manifest = query(project, "select source, path, status from raw.file_manifest order by 1")
    assert manifest == [("air_quality", "day1.csv", "loaded"), ("weather", "day1.csv", "loaded")]
    assert query(project, "select count(*) from raw.air_quality") == [(2,)]
    with wh.connect(project.warehouse_path, limits=DuckDBLimits(), read_only=True) as con:
        for name in ("weather", "air_quality"):
            ledger = reconcile_files(con, files_source(loaded, name))
            assert ledger.holds
            assert (ledger.files_loaded, ledger.rows_landed, ledger.rows_loaded) == (1, 2, 2)


def test_an_old_warehouse_manifest_gains_a_source_column_naming_the_order_files(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema raw")
        con.execute(
            "create table raw.file_manifest (path varchar not null, sha256 varchar not null, "
            "size_bytes bigint not null, mtime_ns bigint not null, ctime_ns bigint not null, "
            "format varchar not null, status varchar not null, rows_landed bigint, "
            "rows_loaded bigint not null, batch_id varchar not null, "
            "processed_at timestamp not null, reason varchar, quarantine_path varchar)"
        )
        con.execute(
            "insert into raw.file_manifest values ('orders_1.csv', 'abc', 1, 1, 1, 'csv', "
            "'loaded', 2, 2, 'b1', now(), null, null)"
        )
    with wh.connect(path, limits=DuckDBLimits()) as con:
        wh.ensure_raw_layer(con)
        wh.ensure_raw_table(con, ORDERS.name, ORDERS.contract.names)
        rows = con.execute("select source, path, rows_rejected from raw.file_manifest")
        assert rows.fetchall() == [("order_files", "orders_1.csv", 0)]
        assert reconcile_files(con, ORDERS).files_loaded == 1


@pytest.mark.parametrize(
    ("extra", "field", "problem"),
    [
        ("landing: ../elsewhere", "sources.0.landing", "'../elsewhere' is not one plain folder"),
        ("formats: []", "sources.0.formats", "accepts no format"),
        ("formats: [csv, xlsx]", "sources.0.formats.1", "'xlsx' is not allowed"),
        ("limits: {max_file_bytes: lots}", "sources.0.limits.max_file_bytes", "not a size"),
        ("limits: {settle_s: -1}", "sources.0.limits.settle_s", "negative duration"),
        ("landing_dir: x", "sources.0.landing_dir", ""),
    ],
)
def test_a_wrong_files_source_field_fails_at_load_naming_file_system_and_field(
    project, extra, field, problem
):
    path = declare(project, "air", AIR.format(landing=f"air\n          {extra}"))
    with pytest.raises(DeclarationError) as raised:
        load_project(project, COMPONENT_TYPES)
    message = str(raised.value)
    where = f"{path} (document 1, system 'air', source 'air_quality')"
    assert message.startswith(f"{where}: field {field}:"), message
    assert problem in message


def test_an_optional_primary_key_column_fails_at_load(project):
    text = AIR.format(landing="air").replace(
        "columns: [day, pm25]", "columns: {day: {optional: true}, pm25: }"
    )
    path = declare(project, "air", text)
    with pytest.raises(DeclarationError) as raised:
        load_project(project, COMPONENT_TYPES)
    assert str(raised.value).startswith(
        f"{path} (document 1, system 'air', source 'air_quality'): "
        "field sources.0.contract.columns.day.optional: "
        "a primary-key column cannot be optional"
    )


def test_two_files_sources_sharing_a_landing_folder_fail_at_load_naming_both_files(project):
    first = declare(project, "met", WEATHER.format(limits=""))
    second = declare(project, "air", AIR.format(landing="weather"))
    with pytest.raises(ProjectError) as raised:
        load_project(project, COMPONENT_TYPES)
    assert str(raised.value) == (
        "files source landing folder name 'weather' is declared more than once: "
        f"{second} (document 1) and {first} (document 1)"
    )
