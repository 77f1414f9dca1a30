"""A new ``sql_table`` source is one YAML block: declared in a temporary project (no
Python), it loads with provenance, incremental reruns add nothing, a changed row is
picked up, a full-refresh source loads once per content, a query source reads only what
its query selects — on SQLite and, when one is reachable, on Postgres."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from declared_sources import resources_with_sources
from project_folders import project_folder

from training_pipeline.components import COMPONENT_TYPES
from training_pipeline.components.errors import DeclarationError
from training_pipeline.components.loader import load_project
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.settings import Settings

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
URL_ENV = "FLEET_DB_URL"
T1, T2, T3 = (datetime(2026, 1, day, 8, 0) for day in (1, 2, 3))

FLEET = """
type: training_pipeline.components.Sources
attributes:
  system: fleet
  owner: team:fleet
  sources:
    - name: planes
      kind: sql_table
      description: One row per plane version; a change bumps `updated`.
      url_env: {url_env}
      url_default: "sqlite:///{{data_dir}}/fleet.sqlite"
      table: {planes}
      incremental: {{cursor: updated}}
      batch_rows: 2
      contract:
        primary_key: [tail_number]
        columns:
          tail_number: {{description: "Registration, e.g. N123AB."}}
          model: {{}}
          seats: {{parse: parse_integer, low: 1, high: 900}}
          updated: {{parse: parse_timestamp_utc}}
    - name: airports
      kind: sql_table
      url_env: {url_env}
      url_default: "sqlite:///{{data_dir}}/fleet.sqlite"
      table: {airports}
      contract: {{primary_key: [code], columns: [code, city]}}
    - name: big_planes
      kind: sql_table
      url_env: {url_env}
      url_default: "sqlite:///{{data_dir}}/fleet.sqlite"
      query: "select tail_number, seats, updated from {planes} where cast(seats as integer) > 200"
      incremental: {{cursor: updated, tiebreak: tail_number}}
      contract: {{primary_key: [tail_number], columns: [tail_number, seats, updated]}}
"""


@dataclass(frozen=True)
class Fleet:
    """A project declaring the fleet system, and the database its sources read."""

    settings: Settings
    engine: sa.Engine
    planes: sa.Table
    airports: sa.Table

    def upsert_plane(self, tail: str, model: str, seats: str, updated: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(self.planes.delete().where(self.planes.c.tail_number == tail))
            conn.execute(
                self.planes.insert(),
                {"tail_number": tail, "model": model, "seats": seats, "updated": updated},
            )

    def set_airports(self, rows: dict[str, str]) -> None:
        with self.engine.begin() as conn:
            conn.execute(self.airports.delete())
            if rows:
                conn.execute(
                    self.airports.insert(), [{"code": c, "city": n} for c, n in rows.items()]
                )

    def materialize(self, name: str) -> dg.ExecuteInProcessResult:
        defs = load_project(self.settings, COMPONENT_TYPES).defs
        asset = defs.get_assets_def(dg.AssetKey(["raw", name]))
        return dg.materialize(
            [asset], resources=resources_with_sources(self.settings), raise_on_error=False
        )

    def rows(self, sql: str) -> list[tuple]:
        settings = self.settings
        with wh.connect(settings.warehouse_path, read_only=True, limits=settings.duckdb) as con:
            return con.execute(sql).fetchall()


def declare_fleet(settings: Settings, tmp_path: Path, **names: str) -> Settings:
    project_dir = project_folder(tmp_path / "project")
    path = project_dir / "defs" / "fleet" / "defs.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(textwrap.dedent(FLEET.format(url_env=URL_ENV, **names)))
    return replace(settings, project_dir=project_dir)


def fleet_tables(metadata: sa.MetaData, planes: str, airports: str) -> tuple[sa.Table, sa.Table]:
    planes_table = sa.Table(
        planes,
        metadata,
        sa.Column("tail_number", sa.Text, primary_key=True),
        sa.Column("model", sa.Text),
        sa.Column("seats", sa.Text),
        sa.Column("updated", sa.DateTime),
    )
    airports_table = sa.Table(
        airports, metadata, sa.Column("code", sa.Text, primary_key=True), sa.Column("city", sa.Text)
    )
    return planes_table, airports_table


@pytest.fixture
def sqlite_fleet(settings: Settings, tmp_path: Path, monkeypatch) -> Iterator[Fleet]:
    monkeypatch.delenv(URL_ENV, raising=False)  # the declaration's default: a SQLite file
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(f"sqlite:///{settings.data_dir / 'fleet.sqlite'}")
    planes, airports = fleet_tables(sa.MetaData(), "planes", "airports")
    planes.metadata.create_all(engine)
    declared = declare_fleet(settings, tmp_path, planes="planes", airports="airports")
    yield Fleet(declared, engine, planes, airports)
    engine.dispose()


@pytest.fixture
def postgres_fleet(settings: Settings, tmp_path: Path, monkeypatch) -> Iterator[Fleet]:
    engine = sa.create_engine(POSTGRES_URL)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as error:
        pytest.skip(f"no PostgreSQL reachable at 127.0.0.1:5432 ({error.orig})")
    suffix = uuid.uuid4().hex[:8]
    planes, airports = fleet_tables(sa.MetaData(), f"planes_{suffix}", f"airports_{suffix}")
    planes.metadata.create_all(engine)
    monkeypatch.setenv(URL_ENV, POSTGRES_URL)  # the variable wins over the default
    declared = declare_fleet(settings, tmp_path, planes=planes.name, airports=airports.name)
    try:
        yield Fleet(declared, engine, planes, airports)
    finally:
        planes.metadata.drop_all(engine)
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fleet(request: pytest.FixtureRequest) -> Fleet:
    return request.getfixturevalue(f"{request.param}_fleet")


def metadata_of(result: dg.ExecuteInProcessResult, name: str) -> dict:
    (event,) = result.get_asset_materialization_events()
    assert event.asset_key == dg.AssetKey(["raw", name])
    return {k: v.value for k, v in event.materialization.metadata.items()}


@pytest.mark.integration
def test_a_declared_table_loads_with_provenance_and_a_rerun_adds_nothing(fleet: Fleet):
    fleet.upsert_plane("N1", "A320", "180", T1)
    fleet.upsert_plane("N2", "B777", "396", T2)
    fleet.upsert_plane("N3", "E175", "76", T2)

    first = fleet.materialize("planes")
    assert first.success
    loaded = metadata_of(first, "planes")
    assert (loaded["rows_loaded_this_run"], loaded["cursor_after"]) == (3, "2026-01-02 08:00:00")
    rows = fleet.rows(
        "select tail_number, model, seats, updated, _source, _source_ref, _batch_id "
        "from raw.planes order by tail_number"
    )
    assert [r[:5] for r in rows] == [
        ("N1", "A320", "180", "2026-01-01 08:00:00", "planes"),
        ("N2", "B777", "396", "2026-01-02 08:00:00", "planes"),
        ("N3", "E175", "76", "2026-01-02 08:00:00", "planes"),
    ]
    table = fleet.planes.name
    assert {r[5] for r in rows} == {f"select tail_number, model, seats, updated from {table}"}
    assert {r[6] for r in rows} == {loaded["batch_id"]}
    assert fleet.rows(
        f"select source, rows_loaded from raw.ingestion_batches where batch_id = "
        f"'{loaded['batch_id']}'"
    ) == [("planes", 3)]

    again = metadata_of(fleet.materialize("planes"), "planes")
    assert (again["rows_read"], again["rows_loaded_this_run"]) == (2, 0)  # the cursor's rows

    fleet.upsert_plane("N3", "E175", "88", T3)  # refitted: a new version of the plane
    changed = metadata_of(fleet.materialize("planes"), "planes")
    assert changed["rows_loaded_this_run"] == 1
    assert fleet.rows(
        "select seats, updated from raw.planes where tail_number = 'N3' order by 2"
    ) == [
        ("76", "2026-01-02 08:00:00"),
        ("88", "2026-01-03 08:00:00"),
    ]


@pytest.mark.integration
def test_rows_breaking_the_declared_contract_are_rejected_and_the_cursor_stops_before_them(
    fleet: Fleet,
):
    fleet.upsert_plane("N1", "A320", "180", T1)
    fleet.upsert_plane("N2", "B777", "9000", T2)  # seats outside [1, 900]
    result = fleet.materialize("planes")
    loaded = metadata_of(result, "planes")
    assert (loaded["rows_loaded_this_run"], loaded["rows_rejected_this_run"]) == (1, 1)
    assert loaded["cursor_after"] == "2026-01-01 08:00:00"
    assert fleet.rows("select column_name, rule from raw.rejected_rows") == [
        ("seats", "value_out_of_range")
    ]
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed


@pytest.mark.integration
def test_a_full_refresh_table_loads_once_per_content_and_whole_when_it_changes(fleet: Fleet):
    fleet.set_airports({"SEA": "Seattle", "PDX": "Portland"})
    first = metadata_of(fleet.materialize("airports"), "airports")
    assert (first["rows_loaded_this_run"], first["unchanged"]) == (2, False)
    assert first["cursor_after"].startswith("sha256:")

    same = metadata_of(fleet.materialize("airports"), "airports")
    assert (same["rows_read"], same["rows_loaded_this_run"], same["unchanged"]) == (2, 0, True)
    assert same["cursor_after"] == first["cursor_after"]

    fleet.set_airports({"SEA": "Seattle-Tacoma"})  # one renamed, one gone
    changed = metadata_of(fleet.materialize("airports"), "airports")
    assert (changed["rows_loaded_this_run"], changed["unchanged"]) == (1, False)
    newest = fleet.rows(
        "select code, city from raw.airports where _batch_id = "
        "(select max_by(_batch_id, _ingested_at) from raw.airports)"
    )
    assert newest == [("SEA", "Seattle-Tacoma")]
    assert fleet.rows("select count(distinct _batch_id), count(*) from raw.airports") == [(2, 3)]


@pytest.mark.integration
def test_a_query_source_reads_only_what_its_query_selects_incrementally(fleet: Fleet):
    fleet.upsert_plane("N1", "A320", "180", T1)
    fleet.upsert_plane("N2", "B777", "396", T2)
    first = metadata_of(fleet.materialize("big_planes"), "big_planes")
    assert first["rows_loaded_this_run"] == 1
    assert fleet.rows("select tail_number, seats, _source from raw.big_planes") == [
        ("N2", "396", "big_planes")
    ]
    assert "as source_query where updated >= " not in first["query"]

    again = metadata_of(fleet.materialize("big_planes"), "big_planes")
    assert again["rows_loaded_this_run"] == 0
    # The cursor as the query delivered it (SQLite hands a text query's timestamps as text).
    assert "as source_query where updated >= '2026-01-02 08:00:00" in again["query"]

    fleet.upsert_plane("N1", "A350", "300", T3)  # now selected by the query
    later = metadata_of(fleet.materialize("big_planes"), "big_planes")
    assert later["rows_loaded_this_run"] == 1


@pytest.mark.integration
def test_a_cursor_column_missing_from_the_real_table_fails_naming_source_table_and_column(
    sqlite_fleet: Fleet,
):
    with sqlite_fleet.engine.begin() as conn:
        conn.execute(sa.text("alter table planes rename column updated to changed"))
    result = sqlite_fleet.materialize("planes")
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.to_string()
    assert "source 'planes': table 'planes'" in message
    assert "lacks columns ['updated'] (incremental.cursor is 'updated')" in message


def test_the_url_variable_is_recorded_by_name_when_set(sqlite_fleet: Fleet, monkeypatch):
    defaults = load_project(sqlite_fleet.settings, COMPONENT_TYPES).defs.resources
    assert defaults["source__planes"].url == (
        f"sqlite:///{sqlite_fleet.settings.data_dir}/fleet.sqlite"
    )
    monkeypatch.setenv(URL_ENV, "postgresql+psycopg://fleet:pw@db.internal/fleet")
    declared = load_project(sqlite_fleet.settings, COMPONENT_TYPES).defs.resources
    assert declared["source__planes"].url == dg.EnvVar(URL_ENV)


BAD_DECLARATIONS = {
    "an unknown cursor column": (
        "incremental: {cursor: changed}",
        "field sources.0.incremental.cursor: 'changed' is not a column of the contract",
    ),
    "an unknown tiebreak column": (
        "incremental: {cursor: updated, tiebreak: serial}",
        "field sources.0.incremental.tiebreak: 'serial' is not a column of the contract",
    ),
    "a key that is not a contract column": (
        "contract: {primary_key: [tail], columns: [tail_number, updated]}",
        "field sources.0.contract.primary_key.0: 'tail' is not a declared column",
    ),
    "an unknown kind": (
        "kind: sql_view",
        "field sources.0.kind: 'sql_view' is not a source kind; "
        "allowed: files, sql_table, http_api",
    ),
    "a missing url_env": ("url_env:", "field sources.0.url_env: is required and missing"),
    "a URL in url_env": (
        "url_env: sqlite:///fleet.sqlite",
        "field sources.0.url_env: 'sqlite:///fleet.sqlite' looks like a URL",
    ),
    "a password in url_default": (
        'url_default: "postgresql://fleet:pw@db/fleet"',
        "field sources.0.url_default: holds a password",
    ),
    "both a table and a query": (
        "query: select 1",
        "field sources.0.table: give exactly one of table and query",
    ),
}


@pytest.mark.parametrize("fault", BAD_DECLARATIONS, ids=str)
def test_a_wrong_sql_declaration_fails_at_load_naming_the_file_the_system_and_the_field(
    settings: Settings, tmp_path: Path, fault: str
):
    line, expected = BAD_DECLARATIONS[fault]
    base = {
        "kind": "kind: sql_table",
        "url_env": "url_env: FLEET_DB_URL",
        "url_default": "",
        "query": "",
        "incremental": "incremental: {cursor: updated}",
        "contract": "contract: {primary_key: [tail_number], columns: [tail_number, updated]}",
    }
    key = line.split(":")[0]
    base[key] = "" if line == f"{key}:" else line  # `url_env:` alone: the field is left out
    text = f"""
        type: training_pipeline.components.Sources
        attributes:
          system: fleet
          sources:
            - name: planes
              {base["kind"]}
              table: planes
              {base["url_env"]}
              {base["url_default"]}
              {base["query"]}
              {base["incremental"]}
              {base["contract"]}
    """
    path = tmp_path / "project" / "defs" / "fleet" / "defs.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(textwrap.dedent(text))
    with pytest.raises(DeclarationError) as raised:
        load_project(replace(settings, project_dir=tmp_path / "project"), COMPONENT_TYPES)
    where = f"{path} (document 1, system 'fleet', source 'planes')"
    assert str(raised.value).startswith(f"{where}: {expected}")
