"""A real HTTP client for the paginated support-ticket API.

Transient failures (5xx, 429, connection errors, timeouts) are retried with exponential
backoff, or after the server's ``Retry-After`` (seconds or an HTTP date) when it gives
one. Anything else stops the ingestion with an error naming the request, because
retrying a malformed answer cannot make it right and skipping it would lose tickets:

* a 4xx, a body that is not the documented JSON, a record without a readable
  ``updated_at``;
* a ``Retry-After`` longer than ``RetryPolicy.max_retry_after_s`` (waiting a day would
  hang the run; the next run asks again);
* a page that repeats records or goes backwards in ``updated_at`` (see ticket_feed.py):
  the page that should have come may have been skipped, and deduplicating would hide it.

Each attempt has a deadline of ``timeout_s`` that also covers a body trickling in (the
per-read timeout alone would not), so one request takes at most about
``max_attempts × 2 × timeout_s`` plus the waits between attempts.

Errors name the URL without credentials, and never the password or the Authorization
header a base URL like ``https://user:password@host`` makes httpx send.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import duckdb
import httpx

from training_pipeline.ingestion.records import append_records, last_accepted
from training_pipeline.ingestion.rejected_rows import Provenance
from training_pipeline.ingestion.row_contract import CONTRACTS
from training_pipeline.ingestion.ticket_feed import FeedOrder, FeedOrderError
from training_pipeline.ingestion.warehouse import read_cursor, write_cursor
from training_pipeline.settings import RowContractLimits

SOURCE = "tickets_api"
CONTRACT = CONTRACTS["tickets"]
COLUMNS = CONTRACT.columns
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class TicketsApiError(RuntimeError):
    """The ticket API answered in a way the client cannot use."""


class _DeadlineExceeded(Exception):
    """One attempt took longer than the timeout in total."""


@dataclass(frozen=True)
class Page:
    number: int  # 1-based within one ingestion
    request_ref: str  # path and query of the request that returned it
    records: list[dict[str, Any]]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 10.0
    max_retry_after_s: float = 120.0  # a longer Retry-After is an error, not a wait

    def delay(self, attempt: int) -> float:
        return min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)


def retry_after_s(value: str, now: datetime) -> float | None:
    """The wait a ``Retry-After`` header asks for (delay-seconds or an HTTP date), or
    None when it is neither (RFC 9110 says to ignore such a header)."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None  # an HTTP date is always GMT; one without a zone is not one
    return max(0.0, (moment - now).total_seconds())


class TicketsApiClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        page_size: int = 500,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout_s, transport=transport
        )
        url = self._client.base_url
        self._origin = f"{url.scheme}://{url.netloc.decode()}"  # no user or password
        self._secrets = _secrets_of(url)
        self._timeout_s = timeout_s
        self._page_size = page_size
        self._retry = retry
        self._sleep = sleep
        self._now = now
        self.retries_made = 0

    def __enter__(self) -> TicketsApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._client.close()

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _error(self, message: str) -> TicketsApiError:
        return TicketsApiError(self._redact(message))

    def _excerpt(self, response: httpx.Response, length: int) -> str:
        """The start of a body for an error; redacted before it is cut, so that a cut
        cannot leave half a secret behind (a gateway may echo the request's headers)."""
        return self._redact(response.text)[:length]

    def _send(self, request: httpx.Request) -> httpx.Response:
        """One attempt, read in full before ``timeout_s`` has passed since it started."""
        deadline = time.monotonic() + self._timeout_s
        response = self._client.send(request, stream=True)
        try:
            chunks = []
            for chunk in response.iter_bytes():
                if time.monotonic() > deadline:
                    raise _DeadlineExceeded
                chunks.append(chunk)
            if time.monotonic() > deadline:
                raise _DeadlineExceeded
        finally:
            response.close()
        # The chunks are decoded already: their encoding and length no longer apply.
        headers = [
            (k, v)
            for k, v in response.headers.multi_items()
            if k.lower() not in ("content-encoding", "content-length")
        ]
        return httpx.Response(
            response.status_code, headers=headers, content=b"".join(chunks), request=request
        )

    def _get_json(self, params: dict[str, str | int]) -> tuple[str, dict[str, Any]]:
        request = self._client.build_request("GET", "/tickets", params=params)
        ref = f"{request.url.path}?{request.url.query.decode()}"
        url = f"{self._origin}{ref}"
        started = time.monotonic()
        for attempt in range(1, self._retry.max_attempts + 1):
            delay = self._retry.delay(attempt)
            try:
                response = self._send(request)
            except httpx.TimeoutException as error:
                failure = f"{type(error).__name__} after the {self._timeout_s:g} s timeout"
            except _DeadlineExceeded:
                failure = f"no complete answer within the {self._timeout_s:g} s timeout"
            except httpx.TransportError as error:  # connection refused, reset, ...
                failure = f"{type(error).__name__}: {error}"
            else:
                if response.status_code not in RETRYABLE_STATUS:
                    return ref, self._parse_body(url, response)
                failure = f"HTTP {response.status_code}"
                header = response.headers.get("retry-after")
                if header is not None:
                    wait = retry_after_s(header, self._now())
                    if wait is None:
                        failure += f" (unreadable Retry-After {header!r}: backed off instead)"
                    elif wait > self._retry.max_retry_after_s:
                        raise self._error(
                            f"GET {url} answered HTTP {response.status_code} asking to retry "
                            f"after {wait:.0f} s (Retry-After: {header}), longer than the "
                            f"{self._retry.max_retry_after_s:g} s this client waits "
                            "(max_retry_after_s); stopping instead of hanging the run"
                        )
                    else:
                        delay = wait
            if attempt == self._retry.max_attempts:
                raise self._error(
                    f"GET {url} failed after {attempt} attempts in "
                    f"{time.monotonic() - started:.1f} s; last error: {failure}"
                )
            self.retries_made += 1
            self._sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")

    def _parse_body(self, url: str, response: httpx.Response) -> dict[str, Any]:
        if response.status_code != 200:
            raise self._error(
                f"GET {url} answered HTTP {response.status_code}: {self._excerpt(response, 200)}"
            )
        try:
            body = response.json()
        except ValueError as error:
            raise self._error(
                f"GET {url} answered a body that is not JSON: {self._excerpt(response, 80)!r}"
            ) from error
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("data"), list)
            or "next_cursor" not in body
            or not all(isinstance(r, dict) for r in body["data"])
        ):
            raise self._error(
                f"GET {url} answered JSON without the documented shape "
                "{'data': [objects], 'next_cursor': ...}"
            )
        return body

    def iter_pages(self, updated_since: str | None) -> Iterator[Page]:
        """Every ticket updated at or after ``updated_since``, one page at a time; each
        page is checked to continue the feed (ticket_feed.py) before it is yielded."""
        order = FeedOrder(updated_since)
        cursor: str | None = None
        seen_cursors: set[str] = set()
        number = 0
        while True:
            params: dict[str, str | int] = {"limit": self._page_size}
            if updated_since:
                params["updated_since"] = updated_since
            if cursor:
                params["cursor"] = cursor
            ref, body = self._get_json(params)
            url = f"{self._origin}{ref}"
            number += 1
            try:
                order.check_page(body["data"])
            except FeedOrderError as problem:
                raise self._error(
                    f"GET {url} {problem}; stopping after {number - 1} good pages "
                    f"(this request's cursor: {cursor or '(none)'})"
                ) from None
            yield Page(number, ref, body["data"])
            cursor = body["next_cursor"]
            if cursor is None:
                return
            if cursor in seen_cursors:
                raise self._error(
                    f"GET {url} returned a cursor already followed; the API is repeating "
                    "pages, stopping instead of looping"
                )
            seen_cursors.add(cursor)


def _secrets_of(url: httpx.URL) -> list[str]:
    """What of the base URL must never be shown: its password, also percent-encoded and
    as the Basic Authorization value httpx builds from it."""
    if not url.password:
        return []
    userinfo = f"{url.username}:{url.password}"
    basic = base64.b64encode(userinfo.encode()).decode()
    raw_password = url.userinfo.decode().partition(":")[2]
    return [s for s in (basic, raw_password, url.password) if s]


@dataclass(frozen=True)
class TicketsReport:
    pages: int
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    retries: int
    cursor_before: str | None
    cursor_after: str | None
    refs: tuple[str, ...]


def ingest_tickets(
    con: duckdb.DuckDBPyConnection,
    client: TicketsApiClient,
    *,
    batch_id: str,
    ingested_at: datetime,
    limits: RowContractLimits,
) -> TicketsReport:
    """Copy tickets updated since the stored cursor into raw.tickets, page by page.

    The caller owns the DuckDB transaction: pages and the moved cursor commit together,
    so a failure halfway (an API fault, a page that repeats or goes backwards) leaves
    the cursor where it was and loads nothing; the next run starts over from it.
    """
    cursor_before = read_cursor(con, SOURCE)
    cursor_after = cursor_before
    rows_read = rows_loaded = rows_rejected = 0
    refs: list[str] = []
    for page in client.iter_pages(cursor_before):
        refs.append(page.request_ref)
        rows_read += len(page.records)
        split = append_records(
            con,
            CONTRACT,
            page.records,
            provenance=Provenance(
                SOURCE, f"page {page.number}: {page.request_ref}", batch_id, ingested_at
            ),
            limits=limits,
            dedupe_on=("ticket_id", "updated_at"),
            cursor=cursor_before,
            cursor_column="updated_at",
        )
        rows_loaded += split.rows_loaded
        rows_rejected += split.rows_rejected
        # iter_pages checked that updated_at never decreases
        if (accepted := last_accepted(page.records, split)) is not None:
            cursor_after = accepted["updated_at"]
    if cursor_after is not None and cursor_after != cursor_before:
        write_cursor(con, SOURCE, cursor_after)
    return TicketsReport(
        len(refs),
        rows_read,
        rows_loaded,
        rows_rejected,
        client.retries_made,
        cursor_before,
        cursor_after,
        tuple(refs),
    )
