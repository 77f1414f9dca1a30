"""A real HTTP client for the paginated support-ticket API.

Transient failures (5xx, connection errors, timeouts) are retried with exponential
backoff; anything else (4xx, a body that is not the documented JSON, a cursor that
repeats) stops the ingestion with an error naming the request, because retrying a
malformed answer cannot make it right and skipping it would lose tickets.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import httpx

from training_pipeline.ingestion.records import append_records
from training_pipeline.ingestion.warehouse import RAW_COLUMNS, read_cursor, write_cursor

SOURCE = "tickets_api"
COLUMNS = RAW_COLUMNS["tickets"]
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class TicketsApiError(RuntimeError):
    """The ticket API answered in a way the client cannot use."""


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

    def delay(self, attempt: int) -> float:
        return min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)


class TicketsApiClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        page_size: int = 500,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout_s, transport=transport
        )
        self._page_size = page_size
        self._retry = retry
        self._sleep = sleep
        self.retries_made = 0

    def __enter__(self) -> TicketsApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._client.close()

    def _get_json(self, params: dict[str, str | int]) -> tuple[str, dict[str, Any]]:
        request = self._client.build_request("GET", "/tickets", params=params)
        ref = f"{request.url.path}?{request.url.query.decode()}"
        for attempt in range(1, self._retry.max_attempts + 1):
            delay = self._retry.delay(attempt)
            try:
                response = self._client.send(request)
            except httpx.TransportError as error:  # timeouts and connection failures
                failure = f"{type(error).__name__}: {error}"
            else:
                if response.status_code not in RETRYABLE_STATUS:
                    return ref, _parse_body(ref, response)
                failure = f"HTTP {response.status_code}"
                retry_after = response.headers.get("retry-after", "").strip()
                if retry_after.isdigit():
                    delay = min(float(retry_after), self._retry.max_backoff_s)
            if attempt == self._retry.max_attempts:
                raise TicketsApiError(
                    f"GET {ref} failed after {attempt} attempts; last error: {failure}"
                )
            self.retries_made += 1
            self._sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")

    def iter_pages(self, updated_since: str | None) -> Iterator[Page]:
        """Every ticket updated at or after ``updated_since``, one page at a time."""
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
            number += 1
            yield Page(number, ref, body["data"])
            cursor = body["next_cursor"]
            if cursor is None:
                return
            if cursor in seen_cursors:
                raise TicketsApiError(
                    f"GET {ref} returned a cursor already followed; the API is repeating "
                    "pages, stopping instead of looping"
                )
            seen_cursors.add(cursor)


def _parse_body(ref: str, response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 200:
        raise TicketsApiError(
            f"GET {ref} answered HTTP {response.status_code}: {response.text[:200]}"
        )
    try:
        body = response.json()
    except ValueError as error:
        raise TicketsApiError(
            f"GET {ref} answered a body that is not JSON: {response.text[:80]!r}"
        ) from error
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("data"), list)
        or "next_cursor" not in body
        or not all(isinstance(r, dict) for r in body["data"])
    ):
        raise TicketsApiError(
            f"GET {ref} answered JSON without the documented shape "
            "{'data': [objects], 'next_cursor': ...}"
        )
    return body


@dataclass(frozen=True)
class TicketsReport:
    pages: int
    rows_read: int
    rows_loaded: int
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
) -> TicketsReport:
    """Copy tickets updated since the stored cursor into raw.tickets, page by page.

    The caller owns the DuckDB transaction: pages and the moved cursor commit together,
    so a failure halfway leaves the cursor where it was and the next run starts over.
    """
    cursor_before = read_cursor(con, SOURCE)
    cursor_after = cursor_before
    rows_read = rows_loaded = 0
    refs: list[str] = []
    for page in client.iter_pages(cursor_before):
        refs.append(page.request_ref)
        rows_read += len(page.records)
        rows_loaded += append_records(
            con,
            "tickets",
            COLUMNS,
            page.records,
            provenance=(SOURCE, f"page {page.number}: {page.request_ref}", batch_id, ingested_at),
            dedupe_on=("ticket_id", "updated_at"),
            cursor=cursor_before,
        )
        for record in page.records:
            updated_at = record.get("updated_at")
            if not isinstance(updated_at, str) or not updated_at:
                raise TicketsApiError(
                    f"GET {page.request_ref} returned ticket {record.get('ticket_id')!r} "
                    "without an updated_at"
                )
            if cursor_after is None or updated_at > cursor_after:
                cursor_after = updated_at
    if cursor_after is not None and cursor_after != cursor_before:
        write_cursor(con, SOURCE, cursor_after)
    return TicketsReport(
        len(refs),
        rows_read,
        rows_loaded,
        client.retries_made,
        cursor_before,
        cursor_after,
        tuple(refs),
    )
