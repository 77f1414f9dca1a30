"""The ticket API client and ingestion, against the real demo HTTP server on loopback."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from churn_demo.api_server import DemoApiServer, Fault, encode_cursor
from churn_demo.generator import generate

from training_pipeline.assets.source_http import HttpSourceResource
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.ingestion.http_api import HttpApiClient, HttpApiError, ingest_http
from training_pipeline.settings import DuckDBLimits, RowContractLimits, Settings
from training_pipeline_tests.http_source_helpers import LEDGER as SOURCE
from training_pipeline_tests.http_source_helpers import (
    churn_tickets,
    ensure_raw_layer,
    tickets_client,
)

pytestmark = pytest.mark.integration  # ingestion from the live demo API, with its timeouts

AT = datetime(2026, 3, 1, 12, 0, 0)
CONTRACT = RowContractLimits()


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


def client_for(server: DemoApiServer, **kwargs) -> HttpApiClient:
    return tickets_client(server.url, **kwargs)


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
    with client_for(server) as client, pytest.raises(HttpApiError) as raised:
        list(client.iter_pages("2026-01-05T00:00:00Z"))
    assert "/tickets?" in str(raised.value) and "after 3 attempts" in str(raised.value)
    assert "HTTP 503" in str(raised.value)


def test_a_body_that_is_not_json_is_an_error_not_an_empty_page(server):
    server.faults.append(Fault(status=200, body=b"<html>maintenance</html>"))
    with client_for(server) as client, pytest.raises(HttpApiError, match="not JSON"):
        list(client.iter_pages(None))


def test_an_unreachable_api_is_retried_then_reported():
    client = tickets_client("http://127.0.0.1:9", timeout_s=0.5)
    with client, pytest.raises(HttpApiError, match="ConnectError"):
        list(client.iter_pages(None))


def test_ingestion_is_incremental_and_a_rerun_adds_nothing(server, world, tmp_path):
    with (
        wh.connect(tmp_path / "w.duckdb", limits=DuckDBLimits()) as con,
        client_for(server, page_size=25) as client,
    ):
        ensure_raw_layer(con)
        first = ingest_http(con, client, batch_id="b1", ingested_at=AT, limits=CONTRACT)
        assert first.rows_loaded == len(stored_versions(world)) > 0
        assert first.pages > 1 and first.cursor_after is not None

        again = ingest_http(con, client, batch_id="b2", ingested_at=AT, limits=CONTRACT)
        assert again.rows_loaded == 0
        assert again.cursor_before == first.cursor_after

        generate(world, days=3)
        later = ingest_http(con, client, batch_id="b3", ingested_at=AT, limits=CONTRACT)
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
    client = tickets_client("http://api", sleep=slept.append, transport=transport)
    with client:
        pages = list(client.iter_pages(None))
    assert slept == [3.0]
    assert pages[0].records == page["data"]


def test_a_cursor_that_repeats_stops_the_ingestion_instead_of_looping():
    page = {"data": [], "next_cursor": "abc"}
    transport = scripted([httpx.Response(200, json=page)] * 3)
    client = tickets_client("http://api", transport=transport)
    with client, pytest.raises(HttpApiError, match="cursor already followed"):
        list(client.iter_pages(None))


def raw_versions(con) -> list[tuple[str, str]]:
    return con.execute("select ticket_id, updated_at from raw.tickets").fetchall()


def failed_run(con, client: HttpApiClient, batch_id: str) -> HttpApiError:
    """One ingestion in its own transaction, as the raw/tickets asset runs it, that fails."""
    with pytest.raises(HttpApiError) as raised, wh.transaction(con):
        ingest_http(con, client, batch_id=batch_id, ingested_at=AT, limits=CONTRACT)
    return raised.value


def test_a_repeated_page_loads_nothing_and_the_next_run_loads_every_version_once(
    server, world, tmp_path
):
    # Page 2 serves page 1's records again (a stale cache) with page 2's real cursor, so
    # page 2's own records would be skipped: deduplicating would hide a gap.
    server.faults.extend([Fault(), Fault(repeat_previous_page=True)])
    with (
        wh.connect(tmp_path / "w.duckdb", limits=DuckDBLimits()) as con,
        client_for(server, page_size=10) as client,
    ):
        ensure_raw_layer(con)
        error = failed_run(con, client, "b1")
        assert "a second time" in str(error) and "repeating records" in str(error)
        assert f"GET {server.url}/tickets?limit=10&cursor=" in str(error)
        assert raw_versions(con) == []
        assert wh.read_cursor(con, SOURCE) is None

        with wh.transaction(con):
            ingest_http(con, client, batch_id="b2", ingested_at=AT, limits=CONTRACT)
        versions = raw_versions(con)
        assert len(versions) == len(set(versions))
        assert set(versions) == stored_versions(world)


def test_a_cursor_that_points_back_keeps_the_source_cursor_and_the_next_run_catches_up(
    server, world, tmp_path
):
    with (
        wh.connect(tmp_path / "w.duckdb", limits=DuckDBLimits()) as con,
        client_for(server, page_size=2) as client,
    ):
        ensure_raw_layer(con)
        with wh.transaction(con):
            first = ingest_http(con, client, batch_id="b1", ingested_at=AT, limits=CONTRACT)
        generate(world, days=3)
        # Page 2 of the next run hands out a cursor from before the run: page 3 would
        # start over from updated_since, behind what page 2 already reached.
        back = encode_cursor("2000-01-01T00:00:00Z", "T0")
        server.faults.extend([Fault(), Fault(next_cursor=back)])
        error = failed_run(con, client, "b2")
        assert "went backwards" in str(error)
        assert f"GET {server.url}/tickets?" in str(error) and f"cursor={back}" in str(error)
        assert len(raw_versions(con)) == first.rows_loaded
        assert wh.read_cursor(con, SOURCE) == first.cursor_after

        with wh.transaction(con):
            later = ingest_http(con, client, batch_id="b3", ingested_at=AT, limits=CONTRACT)
        assert later.cursor_before == first.cursor_after < later.cursor_after
        assert sorted(raw_versions(con)) == sorted(stored_versions(world))


def http_date(seconds_from_now: float) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds_from_now), usegmt=True)


@pytest.mark.parametrize("retry_after", ["90", "http-date"])
def test_a_429_waits_for_retry_after_given_in_seconds_or_as_an_http_date(
    server, world, retry_after
):
    header = http_date(90) if retry_after == "http-date" else retry_after
    server.faults.append(Fault(status=429, headers={"Retry-After": header}))
    slept: list[float] = []
    with client_for(server, page_size=1000, sleep=slept.append) as client:
        records = [r for p in client.iter_pages(None) for r in p.records]
    assert len(slept) == 1 and 88 <= slept[0] <= 90  # an HTTP date has whole seconds
    assert len(records) == len(stored_versions(world))


@pytest.mark.parametrize("retry_after", ["86400", "http-date"])
def test_a_retry_after_beyond_the_cap_is_an_error_naming_the_wait_not_a_hang(server, retry_after):
    started = time.monotonic()
    header = http_date(86400) if retry_after == "http-date" else retry_after
    server.faults.append(Fault(status=429, headers={"Retry-After": header}))
    slept: list[float] = []
    with client_for(server, sleep=slept.append) as client, pytest.raises(HttpApiError) as e:
        list(client.iter_pages(None))
    elapsed = time.monotonic() - started
    assert elapsed < 5 and slept == []
    message = str(e.value)
    assert "HTTP 429" in message and "max_retry_after_s" in message
    assert f"Retry-After: {header}" in message
    # An HTTP date counts down while the request is under way (whole seconds, truncated).
    wait = int(re.search(r"(\d+) s\b", message.split(header, 1)[1]).group(1))
    assert 86400 - int(elapsed) - 1 <= wait <= 86400, message
    assert f"GET {server.url}/tickets?" in message


def test_the_retry_after_cap_is_configured_on_the_resource(server):
    server.faults.append(Fault(status=503, headers={"Retry-After": "30"}))
    declaration = churn_tickets(retry={"attempts": 3, "max_retry_after_s": "10s"})
    resource = HttpSourceResource.of(declaration, server.url)
    with resource.client() as client, pytest.raises(HttpApiError, match="than the 10 s"):
        list(client.iter_pages(None))


def test_responses_slower_than_the_timeout_fail_in_bounded_time_naming_the_url(server):
    server.faults.extend([Fault(delay_s=2.0)] * 3)
    started = time.monotonic()
    with client_for(server, timeout_s=0.3) as client, pytest.raises(HttpApiError) as raised:
        list(client.iter_pages(None))
    elapsed = time.monotonic() - started
    assert elapsed < 3 * 2 * 0.3 + 1.0, elapsed  # attempts × 2 × timeout, plus backoff
    assert f"GET {server.url}/tickets?limit=500 failed after 3 attempts" in str(raised.value)
    assert "ReadTimeout after the 0.3 s timeout" in str(raised.value)


class _LocalApi(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.headers_seen: list[dict[str, str]] = []
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> _LocalApi:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()
        self.server_close()


class _TrickleHandler(BaseHTTPRequestHandler):
    """Headers at once, then the body one byte every 0.1 s: no single read times out."""

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        body = b'{"data": [], "next_cursor": null}' + b" " * 200
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            for i in range(len(body)):
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up, as it should

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return


def test_a_body_that_trickles_in_past_the_timeout_is_cut_off_per_attempt():
    with _LocalApi(_TrickleHandler) as api:
        started = time.monotonic()
        client = tickets_client(api.url, timeout_s=0.5)
        with client, pytest.raises(HttpApiError) as raised:
            list(client.iter_pages(None))
        elapsed = time.monotonic() - started
    # Without the per-attempt deadline each attempt would take 23 s (230 bytes × 0.1 s).
    assert elapsed < 3 * 2 * 0.5 + 1.0, elapsed
    assert "no complete answer within the 0.5 s timeout" in str(raised.value)
    assert f"GET {api.url}/tickets?limit=500 failed after 3 attempts" in str(raised.value)


class _EchoAuthHandler(BaseHTTPRequestHandler):
    """Answers 401 with the request's headers in the body, as some gateways do."""

    server: _LocalApi

    def do_GET(self) -> None:  # noqa: N802
        self.server.headers_seen.append(dict(self.headers))
        body = f"unauthorized: {dict(self.headers)}".encode()
        self.send_response(401)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return


def test_credentials_in_the_api_url_never_appear_in_an_error():
    with _LocalApi(_EchoAuthHandler) as api:
        host = api.url.removeprefix("http://")
        client = tickets_client(f"http://svc:p%40ss-s3cret@{host}")
        with client, pytest.raises(HttpApiError) as raised:
            list(client.iter_pages(None))
        sent = api.headers_seen[0]["Authorization"]
    message = str(raised.value)
    assert sent.startswith("Basic ")  # the secret did travel, and the body echoed it
    assert "HTTP 401" in message and f"GET http://{host}/tickets?" in message
    token = sent.removeprefix("Basic ")
    # Not even the start of one: the body excerpt is cut after the secret is masked.
    for secret in ("p@ss-s3cret", "p%40ss-s3cret", "s3cret", token[:8]):
        assert secret not in message
    assert "***" in message


def test_credentials_never_appear_when_the_api_is_unreachable():
    client = tickets_client("http://svc:s3cret@127.0.0.1:9", timeout_s=0.5)
    with client, pytest.raises(HttpApiError) as raised:
        list(client.iter_pages(None))
    assert "s3cret" not in str(raised.value)
    assert "GET http://127.0.0.1:9/tickets?" in str(raised.value)


def test_a_record_without_a_readable_updated_at_stops_before_its_page_is_loaded():
    page = {"data": [{"ticket_id": "T1", "updated_at": "yesterday"}], "next_cursor": None}
    transport = scripted([httpx.Response(200, json=page)])
    client = tickets_client("http://api", transport=transport)
    with client, pytest.raises(HttpApiError, match="'T1' with updated_at 'yesterday'"):
        list(client.iter_pages(None))
