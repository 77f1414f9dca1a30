"""The demo support-ticket API: a real HTTP server over the ticket store.

``GET /tickets?updated_since=&limit=&cursor=`` is a change feed: it serves every
*version* of every ticket (one record per change) in ``(updated_at, ticket_id)`` order
with keyset pagination, as docs/sources.md specifies, so a client that polls rarely still
sees each intermediate state; ``GET /health`` answers ``{"status": "ok", "service":
SERVICE, "store": <fingerprint>}``, the fingerprint naming the ticket store (so the data
directory) it serves: `training-pipeline run` reuses a server only when it serves its own
data directory (``companion.py``).  The store is opened read-only on every request, so
days generated while the server runs are served at once.

Tests drive the ingestion client's failure handling through ``server.faults``: each
``/tickets`` request takes the next ``Fault`` (an error status with headers such as
``Retry-After``, a delay, a body that is not JSON, the previous page's records served
again, or a next cursor of the test's choosing) before being answered, e.g.::

    with DemoApiServer(settings, port=0) as server:
        server.faults.extend([Fault(status=500), Fault(delay_s=2.0)])
        httpx.get(f"{server.url}/tickets")
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import signal
import sys
import threading
import time
from collections import deque
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from churn_demo import ticket_store
from training_pipeline.settings import Settings

log = logging.getLogger(__name__)

# Where the demo serves its API unless told otherwise: the address the example's
# tickets declaration falls back to (examples/defs/churn/support/defs.yaml,
# base_url_default; a test pins that they agree).
DEMO_API_HOST = "127.0.0.1"
DEMO_API_PORT = 8765
DEMO_API_URL = f"http://{DEMO_API_HOST}:{DEMO_API_PORT}"
SERVICE = "churn-demo ticket API"

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_CURSOR_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour: wait ``delay_s``, then answer ``status`` and/or ``body``
    (with ``headers``) instead of the real page. Without a status or body the real page
    is served, with its records replaced by the previous answer's when
    ``repeat_previous_page`` (a stale cache), and its next cursor by ``next_cursor`` when
    given (e.g. one that points back)."""

    status: int | None = None
    delay_s: float = 0.0
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    repeat_previous_page: bool = False
    next_cursor: str | None = None


class BadParameter(ValueError):
    def __init__(self, parameter: str, detail: str) -> None:
        super().__init__(f"{parameter}: {detail}")
        self.parameter = parameter
        self.detail = detail


@dataclass(frozen=True)
class TicketQuery:
    updated_since: str | None  # normalized to the store's clean UTC text
    after: tuple[str, str] | None  # (updated_at, ticket_id) of the previous page's last row
    limit: int


def encode_cursor(updated_at: str, ticket_id: str) -> str:
    return base64.urlsafe_b64encode(f"{updated_at}|{ticket_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadParameter("cursor", "not a cursor returned by this API") from None
    updated_at, separator, ticket_id = text.partition("|")
    if not separator or not ticket_id or not _CURSOR_TIME.fullmatch(updated_at):
        raise BadParameter("cursor", "not a cursor returned by this API")
    return updated_at, ticket_id


def _normalize_since(value: str) -> str:
    """ISO 8601 → the store's ``YYYY-MM-DDTHH:MM:SSZ``; no zone means UTC. A fraction of
    a second rounds up, which keeps the bound exact for whole-second timestamps."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadParameter("updated_since", f"not an ISO 8601 timestamp: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ticket_query(query: str) -> TicketQuery:
    """Validate the query string of ``/tickets``; raise BadParameter naming the culprit."""
    params = parse_qs(query, keep_blank_values=True)
    for name, values in params.items():
        if name not in ("updated_since", "limit", "cursor"):
            raise BadParameter(name, "unknown parameter")
        if len(values) > 1:
            raise BadParameter(name, "given more than once")
    single = {name: values[0] for name, values in params.items()}
    limit = DEFAULT_LIMIT
    if "limit" in single:
        text = single["limit"]
        if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
            raise BadParameter("limit", f"must be an integer from 1 to {MAX_LIMIT}")
        limit = int(text)
    since = single.get("updated_since")
    cursor = single.get("cursor")
    return TicketQuery(
        updated_since=_normalize_since(since) if since is not None else None,
        after=decode_cursor(cursor) if cursor is not None else None,
        limit=limit,
    )


def store_fingerprint(settings: Settings) -> str:
    """Names the ticket store (the data directory) a server serves, without its path."""
    path = ticket_store.ticket_store_path(settings).resolve()
    return hashlib.sha256(str(path).encode()).hexdigest()[:16]


class TicketApiHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], settings: Settings) -> None:
        super().__init__(address, _Handler)
        self.store_path = ticket_store.ticket_store_path(settings)
        self.health = {"status": "ok", "service": SERVICE, "store": store_fingerprint(settings)}
        self.faults: deque[Fault] = deque()
        self.last_records: list[dict[str, Any]] | None = None  # for repeat_previous_page
        self.requests: list[str] = []  # path and query of every request, in arrival order

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (e.g. timed out during a delay fault) is no server error."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("client %s disconnected before the answer", client_address)
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: TicketApiHTTPServer

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        self.server.requests.append(self.path)
        url = urlsplit(self.path)
        if url.path == "/health":
            self._send_json(HTTPStatus.OK, self.server.health)
        elif url.path == "/tickets":
            self._tickets(url.query)
        else:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no such resource: {url.path}"})

    def _tickets(self, query: str) -> None:
        try:
            fault = self.server.faults.popleft()
        except IndexError:
            fault = None
        if fault is not None:
            time.sleep(fault.delay_s)
            if fault.status is not None or fault.body is not None:
                body = fault.body
                if body is None:
                    body = json.dumps({"error": "injected fault"}).encode()
                self._send(fault.status or HTTPStatus.OK, body, fault.headers)
                return
        try:
            request = parse_ticket_query(query)
        except BadParameter as bad:
            payload = {"error": "bad parameter", "parameter": bad.parameter, "detail": bad.detail}
            self._send_json(HTTPStatus.BAD_REQUEST, payload)
            return
        try:
            conn = ticket_store.connect_read_only(self.server.store_path)
        except FileNotFoundError:
            detail = "no ticket store yet: run `churn-demo world` first"
            self._send_json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": detail})
            return
        with closing(conn):
            rows = ticket_store.fetch_page(
                conn, updated_since=request.updated_since, after=request.after,
                limit=request.limit + 1,
            )  # fmt: skip
        more = len(rows) > request.limit
        rows = rows[: request.limit]
        last = rows[-1] if rows else None
        next_cursor = encode_cursor(last["updated_at"], last["ticket_id"]) if more else None
        served = rows
        if fault is not None and fault.repeat_previous_page and self.server.last_records:
            served = self.server.last_records
        if fault is not None and fault.next_cursor is not None:
            next_cursor = fault.next_cursor
        self.server.last_records = rows
        headers = fault.headers if fault is not None else {}
        self._send_json(HTTPStatus.OK, {"data": served, "next_cursor": next_cursor}, headers)

    def _send_json(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"), headers)

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        log.debug("%s %s", self.address_string(), format % args)


class DemoApiServer:
    """The API server on a background thread; ``port=0`` picks a free port."""

    def __init__(
        self, settings: Settings, host: str = DEMO_API_HOST, port: int = DEMO_API_PORT
    ) -> None:
        self._httpd = TicketApiHTTPServer((host, port), settings)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def faults(self) -> deque[Fault]:
        return self._httpd.faults

    @property
    def requests(self) -> list[str]:
        return self._httpd.requests

    def start(self) -> DemoApiServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},  # how quickly stop() is noticed
            name="demo-ticket-api",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> DemoApiServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def run_until_signalled(self) -> None:
        """Serve in the foreground until SIGINT or SIGTERM, then stop cleanly."""
        stop = threading.Event()
        previous = {
            sig: signal.signal(sig, lambda *_: stop.set())
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self.start()
            log.info("demo ticket API listening on %s", self.url)
            stop.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop()
            log.info("demo ticket API stopped")
