"""A new ``http_api`` source declared in a temporary project (YAML only) loads, pages in
each declared style, keeps its cursor when a page repeats, and honours Retry-After; a
wrong declaration fails at load naming the file, the system and the field."""

from __future__ import annotations

import textwrap
import time
from dataclasses import replace
from pathlib import Path

import dagster as dg
import pytest
from project_folders import project_folder

from training_pipeline.components import COMPONENT_TYPES
from training_pipeline.components.errors import DeclarationError
from training_pipeline.components.loader import load_project
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.resources import build_resources
from training_pipeline.settings import Settings
from training_pipeline_tests.feed_server import Fault, FeedServer

URL_ENV = "HTTP_SOURCE_TEST_URL"
PAGINATION = {
    "cursor": "{style: cursor, cursor_param: cursor, next_path: meta.next}",
    "page_number": "{style: page_number, page_param: page, start: 1}",
    "offset": "{style: offset, offset_param: offset}",
    "link_header": "{style: link_header}",
}
RECORDS_PATH = {"cursor": "result.items", "page_number": "items", "offset": "''"}
DECLARATION = """
    type: training_pipeline.components.Sources
    attributes:
      system: weather
      owner: team:weather
      sources:
        - name: readings
          kind: http_api
          base_url_env: {url_env}
          endpoint: /readings
          records_path: {records_path}
          pagination: {pagination}
          page_size_param: {size_param}
          page_size: 2
          {incremental}
          retry: {{attempts: 3, backoff_s: 10ms, timeout_s: 5s, max_retry_after_s: 2s}}
          contract:
            primary_key: [id]
            columns:
              id: {{}}
              station: {{}}
              updated_at: {{not_blank: true, parse: parse_timestamp_utc}}
"""
INCREMENTAL = "incremental: {param: updated_since, updated_field: updated_at}"


def reading(number: int, day: int) -> dict[str, str]:
    return {"id": f"R{number}", "station": "S1", "updated_at": f"2026-01-{day:02d}T00:00:00Z"}


def declare(settings: Settings, style: str, **overrides: str) -> Path:
    fields = {
        "url_env": URL_ENV,
        "records_path": RECORDS_PATH.get(style, "data"),
        "pagination": PAGINATION[style],
        "size_param": "per_page" if style == "page_number" else "limit",
        # The offset feed is read in full every run: no incremental parameter.
        "incremental": "" if style == "offset" else INCREMENTAL,
    } | overrides
    path = settings.project_dir / "defs" / "weather" / "defs.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(DECLARATION.format(**fields)))
    return path


@pytest.fixture
def project(tmp_path: Path, settings: Settings) -> Settings:
    return replace(settings, project_dir=project_folder(tmp_path / "project"))


def materialize(settings: Settings) -> dg.ExecuteInProcessResult:
    """raw/readings as the project's definitions build it, with the pipeline's resources."""
    defs = load_project(settings, COMPONENT_TYPES).defs
    resources = build_resources(settings) | dict(defs.resources or {})
    return dg.materialize(list(defs.assets or []), resources=resources, raise_on_error=False)


def loaded(result: dg.ExecuteInProcessResult) -> int:
    (event,) = result.get_asset_materialization_events()
    return event.materialization.metadata["rows_loaded_this_run"].value


def failure_of(result: dg.ExecuteInProcessResult) -> str:
    assert not result.success
    (failure,) = result.get_step_failure_events()
    return failure.event_specific_data.error.to_string()


def warehouse_rows(settings: Settings, sql: str) -> list[tuple]:
    with wh.connect(settings.warehouse_path, limits=settings.duckdb, read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.mark.integration
@pytest.mark.parametrize("style", ["cursor", "page_number", "offset", "link_header"])
def test_each_pagination_style_loads_every_record_once_with_its_page_and_a_rerun_adds_nothing(
    project, monkeypatch, style
):
    records = [reading(n, day=n) for n in range(1, 6)]
    with FeedServer(style, records) as server:
        monkeypatch.setenv(URL_ENV, server.url)
        declare(project, style)
        first = materialize(project)
        assert first.success, failure_of(first)
        assert loaded(first) == 5
        rows = warehouse_rows(
            project, "select id, _source, _source_ref from raw.readings order by id"
        )
        assert [r[0] for r in rows] == [f"R{n}" for n in range(1, 6)]
        assert {r[1] for r in rows} == {"readings"}
        assert rows[0][2].startswith("page 1: /readings?") and rows[4][2].startswith("page 3: ")

        again = materialize(project)
        assert again.success, failure_of(again)
        assert loaded(again) == 0
        assert warehouse_rows(project, "select count(*) from raw.readings") == [(5,)]
        if style != "offset":  # incremental: the rerun asks from the stored cursor
            assert "updated_since=2026-01-05" in server.requests[-1]


@pytest.mark.integration
@pytest.mark.parametrize("style", ["cursor", "page_number", "offset", "link_header"])
@pytest.mark.parametrize(
    ("fault", "problem"),
    [
        (Fault(repeat_previous_page=True), "a second time"),
        (Fault(body={"maintenance": True}), "answered JSON without a list of records"),
    ],
    ids=["repeated page", "malformed body"],
)
def test_a_repeated_page_or_a_malformed_body_fails_the_batch_and_keeps_the_cursor(
    project, monkeypatch, style, fault, problem
):
    records = [reading(n, day=n) for n in range(1, 4)]
    with FeedServer(style, records) as server:
        monkeypatch.setenv(URL_ENV, server.url)
        declare(project, style)
        assert loaded(materialize(project)) == 3
        records += [reading(n, day=n) for n in range(4, 9)]
        server.faults += [Fault(), fault]

        message = failure_of(materialize(project))
        assert problem in message and f"GET {server.url}/readings?" in message
        assert warehouse_rows(project, "select count(*) from raw.readings") == [(3,)]
        cursor = "select cursor_value from raw.source_cursors where source = 'readings'"
        # The offset feed is read in full each run: it has no cursor to keep.
        kept = [] if style == "offset" else [("2026-01-03T00:00:00Z",)]
        assert warehouse_rows(project, cursor) == kept

        assert loaded(materialize(project)) == 5
    ids = warehouse_rows(project, "select id from raw.readings order by updated_at, id")
    assert [i for (i,) in ids] == [f"R{n}" for n in range(1, 9)]


@pytest.mark.integration
def test_a_retry_after_within_the_cap_is_waited_and_one_beyond_it_fails_naming_it(
    project, monkeypatch
):
    with FeedServer("cursor", [reading(1, day=1)]) as server:
        monkeypatch.setenv(URL_ENV, server.url)
        declare(project, "cursor")
        server.faults.append(Fault(status=429, headers={"Retry-After": "1"}))
        started = time.monotonic()
        result = materialize(project)
        assert result.success, failure_of(result)
        assert time.monotonic() - started >= 1.0
        assert len(server.requests) == 2  # the 429, then the page

        server.faults.append(Fault(status=503, headers={"Retry-After": "3600"}))
        started = time.monotonic()
        message = failure_of(materialize(project))
        assert time.monotonic() - started < 30
        assert "HTTP 503" in message and "3600 s" in message
        assert "longer than the 2 s" in message and "max_retry_after_s" in message


@pytest.mark.parametrize(
    ("override", "field", "problem"),
    [
        ({"url_env": "http://api.example.com"}, "base_url_env", "looks like a URL"),
        ({"records_path": "''"}, "records_path", "no room for the next cursor"),
        (
            {"incremental": "incremental: {param: since, updated_field: changed}"},
            "incremental.updated_field",
            "'changed' is not a column of the contract",
        ),
        ({"pagination": "{style: tokens}"}, "pagination", "tokens"),
    ],
)
def test_a_wrong_http_declaration_fails_at_load_naming_the_file_system_and_field(
    project, override, field, problem
):
    path = declare(project, "cursor", **override)
    with pytest.raises(DeclarationError) as raised:
        load_project(project, COMPONENT_TYPES)
    message = str(raised.value)
    where = f"{path} (document 1, system 'weather', source 'readings')"
    assert message.startswith(f"{where}: field sources.0.{field}")
    assert problem in message
