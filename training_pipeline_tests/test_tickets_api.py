"""The ticket API client and ingestion, against the real demo HTTP server on loopback."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from training_pipeline.demo.api_server import DemoApiServer, Fault
from training_pipeline.demo.generator import generate
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.ingestion.tickets_api import (
    RetryPolicy,
    TicketsApiClient,
    TicketsApiError,
    ingest_tickets,
)
from training_pipeline.settings import Settings

AT = datetime(2026, 3, 1, 12, 0, 0)
FAST_RETRY = RetryPolicy(max_attempts=3, backoff_s=0.01)


@pytest.fixture
def world(settings: Settings) -> Settings:
    generate(settings, days=30, customers=200, seed=11)
    return settings


@pytest.fixture
def server(world: Settings) -> Iterator[DemoApiServer]:
    with DemoApiServer(world, host="127.0.0.1", port=0) as running:
        yield running


def stored_versions(settings: Settings) -> set[tuple[str, str]]:
    """(ticket_id, updated_at) of every version in the store: what a backfill must return."""
    with sqlite3.connect(settings.demo_dir / "tickets.sqlite") as conn:
        return set(conn.execute("select ticket_id, updated_at from ticket_versions").fetchall())


def client_for(server: DemoApiServer, **kwargs) -> TicketsApiClient:
    return TicketsApiClient(server.url, retry=FAST_RETRY, **kwargs)


def test_pagination_returns_every_ticket_version_exactly_once(server, world):
    with client_for(server, page_size=3) as client:
        pages = list(client.iter_pages(None))
    records = [(r["ticket_id"], r["updated_at"]) for p in pages for r in p.records]
    assert len(pages) > 3
    assert len(records) == len(set(records))
    assert set(records) == stored_versions(world)
    assert [p.number for p in pages] == list(range(1, len(pages) + 1))


def test_a_500_is_retried_and_the_page_then_arrives(server, world):
    server.faults.append(Fault(status=500))
    with client_for(server, page_size=1000) as client:
        records = [r for p in client.iter_pages(None) for r in p.records]
        assert client.retries_made == 1
    assert {(r["ticket_id"], r["updated_at"]) for r in records} == stored_versions(world)


def test_a_response_slower_than_the_timeout_is_retried(server, world):
    server.faults.append(Fault(delay_s=1.5))
    with client_for(server, page_size=1000, timeout_s=0.3) as client:
        records = [r for p in client.iter_pages(None) for r in p.records]
        assert client.retries_made == 1
    assert len(records) == len(stored_versions(world))


def test_an_api_that_keeps_failing_raises_an_error_naming_the_request(server):
    server.faults.extend([Fault(status=503)] * 3)
    with client_for(server) as client, pytest.raises(TicketsApiError) as raised:
        list(client.iter_pages("2026-01-05T00:00:00Z"))
    assert "/tickets?" in str(raised.value) and "after 3 attempts" in str(raised.value)
    assert "HTTP 503" in str(raised.value)


def test_a_body_that_is_not_json_is_an_error_not_an_empty_page(server):
    server.faults.append(Fault(status=200, body=b"<html>maintenance</html>"))
    with client_for(server) as client, pytest.raises(TicketsApiError, match="not JSON"):
        list(client.iter_pages(None))


def test_an_unreachable_api_is_retried_then_reported():
    client = TicketsApiClient("http://127.0.0.1:9", retry=FAST_RETRY, timeout_s=0.5)
    with client, pytest.raises(TicketsApiError, match="ConnectError"):
        list(client.iter_pages(None))


def test_ingestion_is_incremental_and_a_rerun_adds_nothing(server, world, tmp_path):
    with wh.connect(tmp_path / "w.duckdb") as con, client_for(server, page_size=25) as client:
        wh.ensure_raw_layer(con)
        first = ingest_tickets(con, client, batch_id="b1", ingested_at=AT)
        assert first.rows_loaded == len(stored_versions(world)) > 0
        assert first.pages > 1 and first.cursor_after is not None

        again = ingest_tickets(con, client, batch_id="b2", ingested_at=AT)
        assert again.rows_loaded == 0
        assert again.cursor_before == first.cursor_after

        generate(world, days=3)
        later = ingest_tickets(con, client, batch_id="b3", ingested_at=AT)
        raw = set(con.execute("select ticket_id, updated_at from raw.tickets").fetchall())
        latest = set(
            con.execute(
                "select ticket_id, max(updated_at) from raw.tickets group by ticket_id"
            ).fetchall()
        )
        # The API is a change feed: raw holds every version, not only the ones polled.
        assert raw == stored_versions(world)
        with sqlite3.connect(world.demo_dir / "tickets.sqlite") as store:
            current = set(store.execute("select ticket_id, updated_at from tickets").fetchall())
        assert latest == current
        assert later.rows_loaded == len(raw) - first.rows_loaded > 0
        assert later.cursor_after > first.cursor_after
        refs = con.execute(
            "select distinct _source, _batch_id, _source_ref from raw.tickets "
            "where _batch_id = 'b3' order by 3"
        ).fetchall()
        assert all(src == "tickets_api" for src, _, _ in refs)
        assert all(ref.startswith("page ") and "updated_since=" in ref for _, _, ref in refs)


def scripted(responses: list[httpx.Response]) -> httpx.MockTransport:
    queue = list(responses)
    return httpx.MockTransport(lambda request: queue.pop(0))


def test_a_429_waits_as_long_as_retry_after_says_before_retrying():
    page = {
        "data": [{"ticket_id": "T1", "updated_at": "2026-01-01T00:00:00Z"}],
        "next_cursor": None,
    }
    slept: list[float] = []
    transport = scripted(
        [httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200, json=page)]
    )
    client = TicketsApiClient(
        "http://api", retry=FAST_RETRY, sleep=slept.append, transport=transport
    )
    with client:
        pages = list(client.iter_pages(None))
    assert slept == [3.0]
    assert pages[0].records == page["data"]


def test_a_cursor_that_repeats_stops_the_ingestion_instead_of_looping():
    page = {"data": [], "next_cursor": "abc"}
    transport = scripted([httpx.Response(200, json=page)] * 3)
    client = TicketsApiClient("http://api", retry=FAST_RETRY, transport=transport)
    with client, pytest.raises(TicketsApiError, match="cursor already followed"):
        list(client.iter_pages(None))
