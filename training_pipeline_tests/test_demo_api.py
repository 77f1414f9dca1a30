"""The demo ticket API over real HTTP: a change feed of ticket versions, its pagination,
filtering, validation and fault injection."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from churn_demo import messy, ticket_store
from churn_demo.api_server import (
    BadParameter,
    DemoApiServer,
    Fault,
    decode_cursor,
    encode_cursor,
    parse_ticket_query,
    store_fingerprint,
)
from churn_demo.generator import generate
from churn_demo.world import World, WorldConfig

from training_pipeline.settings import Settings


def settings_for(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = settings_for(tmp_path_factory.mktemp("api_world"))
    generate(settings, 15, customers=300, seed=21)
    return settings


@pytest.fixture(scope="module")
def stored(world: Settings) -> list[dict]:
    """Every version of every ticket in the store, in the API's order."""
    return ticket_store.all_versions(ticket_store.ticket_store_path(world))


@pytest.fixture
def server(world: Settings) -> Iterator[DemoApiServer]:
    with DemoApiServer(world, port=0) as running:
        yield running


def get(server: DemoApiServer, **params: str | int) -> httpx.Response:
    return httpx.get(f"{server.url}/tickets", params=params, timeout=10)


def fetch_all(
    server: DemoApiServer, cursor: str | None = None, **params: str | int
) -> tuple[list[dict], int]:
    """Follow next_cursor from ``cursor`` (the start when None) to the end of the feed."""
    rows, pages = [], 0
    while True:
        page = get(server, **params, **({"cursor": cursor} if cursor else {})).json()
        rows += page["data"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return rows, pages


def test_health_answers_ok_naming_the_service_and_the_store_it_serves(server, world):
    response = httpx.get(f"{server.url}/health", timeout=5)
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "service": "churn-demo ticket API",
        "store": store_fingerprint(world),
    }


def test_pagination_returns_every_version_exactly_once_in_cursor_order(server, stored):
    assert len(stored) > 20
    rows, pages = fetch_all(server, limit=7)
    assert pages == -(-len(stored) // 7)
    assert [r["ticket_id"] for r in rows] == [t["ticket_id"] for t in stored]
    assert rows == stored
    keys = [(r["updated_at"], r["ticket_id"]) for r in rows]
    assert keys == sorted(keys)


def test_a_full_backfill_is_every_change_the_simulation_made_in_order(server):
    world, _ = World.bootstrap(WorldConfig(seed=21, customers=300))
    changes = [asdict(row) for _ in range(15) for row in world.step().tickets]
    rows, _ = fetch_all(server, limit=1000)
    assert rows == sorted(changes, key=lambda c: (c["updated_at"], c["ticket_id"]))
    keys = [(r["updated_at"], r["ticket_id"]) for r in rows]
    assert len(keys) == len(set(keys)), "(updated_at, ticket_id) must be a unique keyset"
    assert len(keys) > len({r["ticket_id"] for r in rows}), "no ticket changed: vacuous"


def test_a_ticket_whose_status_changed_three_times_appears_three_times(server, world):
    canonical = {v: k for k, vs in messy.TICKET_STATUS_VARIANTS.items() for v in vs}
    simulated, _ = World.bootstrap(WorldConfig(seed=21, customers=300))
    history: dict[str, list[str]] = {}
    for _ in range(15):
        for row in simulated.step().tickets:
            history.setdefault(row.ticket_id, []).append(canonical[row.status])
    ticket_id = min(t for t, s in history.items() if s == ["open", "pending", "resolved"])
    rows, _ = fetch_all(server, limit=1000)
    versions = [r for r in rows if r["ticket_id"] == ticket_id]
    assert [canonical[v["status"]] for v in versions] == ["open", "pending", "resolved"]
    times = [v["updated_at"] for v in versions]
    assert times[0] < times[1] < times[2]
    # What a current-state API would have served instead: only the last version.
    current = ticket_store.all_tickets(ticket_store.ticket_store_path(world))
    assert [t for t in current if t["ticket_id"] == ticket_id] == versions[-1:]


def test_an_incremental_poll_from_a_cursor_returns_exactly_the_versions_written_after_it(
    tmp_path,
):
    settings = settings_for(tmp_path)
    store = ticket_store.ticket_store_path(settings)
    generate(settings, 10, customers=300, seed=4)
    with DemoApiServer(settings, port=0) as server:
        seen, _ = fetch_all(server, limit=1000)
        last = seen[-1]
        generate(settings, 5)
        cursor = encode_cursor(last["updated_at"], last["ticket_id"])
        polled, _ = fetch_all(server, cursor=cursor, limit=50)
        since, _ = fetch_all(server, updated_since=last["updated_at"], limit=50)
    written_after = ticket_store.all_versions(store)[len(seen) :]
    assert seen == ticket_store.all_versions(store)[: len(seen)]
    assert polled == written_after and polled
    changed = Counter(r["ticket_id"] for r in polled)
    assert max(changed.values()) > 1, "intermediate versions of a ticket are served too"
    # updated_since is inclusive: it re-delivers the versions at the last instant seen.
    assert since == [r for r in seen if r["updated_at"] == last["updated_at"]] + polled


def test_the_default_page_holds_100_versions(server, stored):
    page = get(server).json()
    assert len(page["data"]) == min(100, len(stored))
    assert (page["next_cursor"] is None) == (len(stored) <= 100)


def test_updated_since_is_inclusive(server, stored):
    since = stored[len(stored) // 2]["updated_at"]
    rows, _ = fetch_all(server, updated_since=since, limit=1000)
    assert rows == [t for t in stored if t["updated_at"] >= since]
    assert rows[0]["updated_at"] == since


def test_updated_since_with_an_offset_or_no_zone_is_read_as_that_instant(server, stored):
    since = stored[len(stored) // 2]["updated_at"]
    instant = datetime.fromisoformat(since)
    expected = [t for t in stored if t["updated_at"] >= since]
    for spelling in (
        instant.astimezone(timezone(timedelta(hours=2))).isoformat(),
        instant.astimezone(timezone(timedelta(hours=-5))).isoformat(),
        instant.replace(tzinfo=None).isoformat(sep=" "),
    ):
        assert fetch_all(server, updated_since=spelling, limit=1000)[0] == expected, spelling


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"updated_since": "yesterday"}, "updated_since"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"page": "2"}, "page"),
    ],
)
def test_a_bad_parameter_answers_400_naming_it(server, params, parameter):
    response = get(server, **params)
    assert response.status_code == 400
    assert response.json()["parameter"] == parameter


def test_a_500_fault_is_served_once_then_the_normal_page(server, stored):
    server.faults.append(Fault(status=500))
    assert get(server, limit=5).status_code == 500
    response = get(server, limit=5)
    assert response.status_code == 200 and response.json()["data"] == stored[:5]
    assert not server.faults


def test_a_body_fault_answers_200_with_a_body_that_is_not_json(server):
    server.faults.append(Fault(body=b"not json"))
    response = get(server)
    assert response.status_code == 200 and response.content == b"not json"


def test_a_delay_fault_delays_the_real_page(server, stored):
    server.faults.append(Fault(delay_s=0.5))
    started = time.monotonic()
    response = get(server, limit=3)
    assert time.monotonic() - started >= 0.5
    assert response.json()["data"] == stored[:3]


def test_a_delay_longer_than_the_client_timeout_makes_the_client_time_out(server):
    server.faults.append(Fault(delay_s=1.0))
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{server.url}/tickets", timeout=0.2)
    assert get(server, limit=1).status_code == 200


def test_requests_are_recorded_with_their_query(server):
    get(server, limit=3)
    assert server.requests[-1] == "/tickets?limit=3"


def test_days_generated_while_running_are_served_without_restart(tmp_path):
    settings = settings_for(tmp_path)
    generate(settings, 5, customers=200, seed=2)
    with DemoApiServer(settings, port=0) as server:
        before, _ = fetch_all(server, limit=1000)
        generate(settings, 3)
        after, _ = fetch_all(server, limit=1000)
    assert len(after) > len(before)
    assert max(r["updated_at"] for r in after) > max(r["updated_at"] for r in before)


def test_without_a_ticket_store_the_api_answers_503(tmp_path):
    with DemoApiServer(settings_for(tmp_path), port=0) as server:
        response = get(server)
    assert response.status_code == 503 and "churn-demo world" in response.json()["error"]


def test_a_cursor_round_trips_and_a_forged_one_is_rejected():
    assert decode_cursor(encode_cursor("2026-01-05T13:45:00Z", "T0000042")) == (
        "2026-01-05T13:45:00Z",
        "T0000042",
    )
    with pytest.raises(BadParameter, match="cursor"):
        decode_cursor(encode_cursor("yesterday", "T1"))


def test_a_fractional_updated_since_rounds_up_to_the_next_whole_second():
    query = parse_ticket_query("updated_since=2026-01-05T13:45:00.250%2B02:00")
    assert query.updated_since == "2026-01-05T11:45:01Z"
    assert query.limit == 100 and query.after is None


def test_a_repeated_parameter_is_rejected():
    with pytest.raises(BadParameter, match="limit"):
        parse_ticket_query("limit=5&limit=6")
