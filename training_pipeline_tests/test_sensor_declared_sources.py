"""Acceptance: sources declared in a temporary project (YAML only) each get their slot
in the new-data sensor — a files source, SQL tables (SQLite, and Postgres when one is
reachable) and an HTTP feed are each requested when they change, and nothing is
requested when nothing changed."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import dagster as dg
import pytest
from declared_sources import resources_with_sources
from test_source_sql import T1, Fleet, postgres_fleet, sqlite_fleet  # noqa: F401

from training_pipeline.assets.source_http import HttpSourceResource
from training_pipeline.automation.policy import RetrainingPolicy
from training_pipeline.automation.sensors import build_new_data_sensor
from training_pipeline.components import COMPONENT_TYPES
from training_pipeline.components.loader import load_project
from training_pipeline.components.sources import declared_sources
from training_pipeline_tests.feed_server import FeedServer

DELAYS_URL_ENV = "DELAYS_TEST_URL"
AIRLINE = f"""
type: training_pipeline.components.Sources
attributes:
  system: airline
  sources:
    - name: flights
      kind: files
      limits: {{settle_s: 0s}}
      contract: {{primary_key: [flight], columns: [flight, day]}}
    - name: delays
      kind: http_api
      base_url_env: {DELAYS_URL_ENV}
      endpoint: /delays
      records_path: result.items
      pagination: {{style: cursor, cursor_param: cursor, next_path: meta.next}}
      incremental: {{param: updated_since, updated_field: updated_at}}
      retry: {{attempts: 1, backoff_s: 10ms, timeout_s: 2s}}
      contract: {{primary_key: [id], columns: [id, minutes, updated_at]}}
"""


@dataclass
class Airline:
    fleet: Fleet
    feed: FeedServer
    sensor: dg.SensorDefinition
    resources: dict[str, object]
    cursor: str | None = None

    def tick(self) -> set[str]:
        """One evaluation; the raw assets it requests (the cursor moves on)."""
        with dg.build_sensor_context(
            resources=self.resources, cursor=self.cursor, instance=dg.DagsterInstance.ephemeral()
        ) as context:
            result = self.sensor(context)
        self.cursor = result.cursor
        if not result.run_requests:
            return set()
        (request,) = result.run_requests
        return {key.path[-1] for key in request.asset_selection}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def airline(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Airline]:
    fleet: Fleet = request.getfixturevalue(f"{request.param}_fleet")
    path = fleet.settings.project_dir / "defs" / "airline" / "defs.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(textwrap.dedent(AIRLINE))
    with FeedServer("cursor", []) as feed:
        monkeypatch.setenv(DELAYS_URL_ENV, feed.url)
        declared = declared_sources(load_project(fleet.settings, COMPONENT_TYPES))
        sensor = build_new_data_sensor(RetrainingPolicy(), declared)
        resources = resources_with_sources(fleet.settings)
        yield Airline(fleet, feed, sensor, resources)


def test_each_declared_source_is_requested_when_it_changes_and_nothing_otherwise(
    airline: Airline,
):
    fleet = airline.fleet
    assert airline.sensor.asset_selection is not None
    airline.tick()  # the first look: full-refresh sources have no fingerprint yet
    assert airline.tick() == set()

    landing = fleet.settings.landing_dir_of("flights")
    landing.mkdir(parents=True)
    (landing / "flights_1.csv").write_text("flight,day\nLH1,2026-01-01\n")
    assert airline.tick() == {"flights"}

    fleet.upsert_plane("N1", "A320", "150", T1)
    assert airline.tick() == {"planes"}

    fleet.set_airports({"FRA": "Frankfurt"})
    assert airline.tick() == {"airports"}

    airline.feed.records.append({"id": "D1", "minutes": "12", "updated_at": "2026-01-01T08:00:00Z"})
    assert airline.tick() == {"delays"}

    fleet.upsert_plane("N2", "B747", "400", datetime(2026, 1, 2, 8, 0))
    assert airline.tick() == {"planes", "big_planes"}
    assert airline.tick() == set()


def test_a_source_that_cannot_be_read_holds_back_only_itself_and_says_so(airline: Airline):
    airline.tick()
    airline.feed.records.append({"id": "D1", "minutes": "3", "updated_at": "2026-01-01T08:00:00Z"})
    airline.fleet.set_airports({"FRA": "Frankfurt"})
    declared = airline.resources["source__delays"].source
    unreachable = HttpSourceResource.of(declared, "http://127.0.0.1:9")
    down = airline.resources | {"source__delays": unreachable}
    with dg.build_sensor_context(
        resources=down, cursor=airline.cursor, instance=dg.DagsterInstance.ephemeral()
    ) as context:
        result = airline.sensor(context)
    (request,) = result.run_requests
    assert {key.path[-1] for key in request.asset_selection} == {"airports"}
    airline.cursor = result.cursor
    assert airline.tick() == {"delays"}  # the feed's news was kept for when it answers
    with dg.build_sensor_context(
        resources=down, cursor=airline.cursor, instance=dg.DagsterInstance.ephemeral()
    ) as context:
        quiet = airline.sensor(context)
    assert not quiet.run_requests
    assert "source 'delays' unavailable" in quiet.skip_reason.skip_message
