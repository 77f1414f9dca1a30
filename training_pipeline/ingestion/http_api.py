"""The engine for ``http_api`` sources: page through a declared JSON API into raw.<name>.

One loop serves the four pagination styles of a declaration (``spec/sources.py``):

* ``cursor``: the body names the next cursor (``next_path``), sent back as
  ``cursor_param``; a null or absent one ends the feed, one already followed is an error;
* ``page_number`` / ``offset``: the page number or the records already read go in
  ``page_param`` / ``offset_param``; an empty page is the last (a short one is not
  trusted to be: a server may cap the page size below the one asked for);
* ``link_header``: the ``Link: <...>; rel="next"`` header (RFC 8288) names the next page,
  on the same origin only (a link elsewhere would carry the credentials away).

Every page is checked to continue the feed (``feed_order.py``) before it is handed on: a
page served again or a cursor that points back stops the batch, and the caller's
transaction keeps the source's cursor where it was. A malformed body (not JSON, no list
at ``records_path``, records that are not objects) stops it too.

dlt (``rest_api``) was considered and not adopted: its DuckDB destination loads through
files in its own working folder (which our confined connection may not read), keeps its
incremental state in its own pipeline state instead of our ``raw.source_cursors`` in the
same transaction as the rows, renames columns to snake case and infers types where our
raw contract keeps exact names as text. Its paginators are the model for the styles here.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import httpx

from training_pipeline.ingestion.feed_order import FeedOrder, FeedOrderError
from training_pipeline.ingestion.http_client import HttpApiError, JsonGetter
from training_pipeline.ingestion.records import append_records, last_accepted
from training_pipeline.ingestion.rejected_rows import Provenance
from training_pipeline.ingestion.retry import RetryPolicy
from training_pipeline.ingestion.warehouse import ensure_raw_table, read_cursor, write_cursor
from training_pipeline.settings import RowContractLimits
from training_pipeline.spec.http_options import (
    CursorPagination,
    LinkHeaderPagination,
    OffsetPagination,
    PageNumberPagination,
)
from training_pipeline.spec.sources import HttpApiSource

_NEXT = {"cursor": "cursor", "link_header": "next link", "page_number": "page", "offset": "offset"}

__all__ = [
    "HttpApiClient",
    "HttpApiError",
    "HttpReport",
    "Page",
    "ensure_source_table",
    "ingest_http",
]


@dataclass(frozen=True)
class Page:
    number: int  # 1-based within one ingestion
    request_ref: str  # path and query of the request that returned it
    records: list[dict[str, Any]]


def dig(body: Any, path: str) -> tuple[bool, Any]:
    """The value at a dotted ``path`` in a JSON body ("" = the body), and whether it is there."""
    value = body
    for part in path.split(".") if path else ():
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


class HttpApiClient:
    """Pages of one declared source, read from ``base_url``."""

    def __init__(
        self,
        source: HttpApiSource,
        base_url: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.source = source
        policy = RetryPolicy(
            attempts=source.retry.attempts,
            backoff_s=source.retry.backoff_s,
            max_retry_after_s=source.retry.max_retry_after_s,
        )
        self._http = JsonGetter(
            base_url,
            timeout_s=source.retry.timeout_s,
            policy=policy,
            sleep=sleep,
            now=now,
            transport=transport,
        )

    def __enter__(self) -> HttpApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._http.close()

    @property
    def origin(self) -> str:
        """Scheme, host and port of the API, without credentials."""
        return self._http.origin

    @property
    def retries_made(self) -> int:
        return self._http.retries_made

    def _records(self, url: str, body: Any) -> list[dict[str, Any]]:
        path = self.source.records_path
        found, records = dig(body, path)
        where = f"at {path!r}" if path else "as its body"
        if not found or not isinstance(records, list):
            raise self._http.error(f"GET {url} answered JSON without a list of records {where}")
        if not all(isinstance(record, dict) for record in records):
            raise self._http.error(
                f"GET {url} answered JSON records {where} that are not all objects"
            )
        return records

    def _next_cursor(self, url: str, body: Any, pagination: CursorPagination) -> str | None:
        found, cursor = dig(body, pagination.next_path)
        if not found or not (cursor is None or isinstance(cursor, str | int)):
            raise self._http.error(
                f"GET {url} answered JSON without a next cursor at {pagination.next_path!r} "
                "(a string, or null on the last page)"
            )
        return None if cursor in (None, "") else str(cursor)

    def _next_link(self, url: str, response: httpx.Response) -> str | None:
        link = response.links.get("next", {}).get("url")
        if not link:
            return None
        target = response.request.url.join(link)
        if f"{target.scheme}://{target.netloc.decode()}" != self._http.origin:
            raise self._http.error(
                f"GET {url} answered a next link to another origin ({target.scheme}://"
                f"{target.host}); refusing to follow it with this API's credentials"
            )
        return str(target)

    def _following(
        self,
        url: str,
        response: httpx.Response,
        body: Any,
        base: dict[str, str | int],
        number: int,
        read: int,
        empty: bool,
    ) -> httpx.Request | None:
        """The request for the page after page ``number`` (``read`` records so far, none
        on this page when ``empty``), or None when that page was the last."""
        pagination, endpoint = self.source.pagination, self.source.endpoint
        match pagination:
            case CursorPagination():
                cursor = self._next_cursor(url, body, pagination)
                if cursor is None:
                    return None
                return self._http.request(endpoint, {**base, pagination.cursor_param: cursor})
            case PageNumberPagination() if not empty:
                page = pagination.start + number
                return self._http.request(endpoint, {**base, pagination.page_param: page})
            case OffsetPagination() if not empty:
                return self._http.request(endpoint, {**base, pagination.offset_param: read})
            case LinkHeaderPagination():
                link = self._next_link(url, response)
                return None if link is None else self._http.request(link, None)
        return None

    def iter_pages(self, updated_since: str | None) -> Iterator[Page]:
        """Every record (changed at or after ``updated_since``), one page at a time."""
        source, pagination = self.source, self.source.pagination
        order = FeedOrder(
            updated_since,
            source.contract.primary_key,
            source.incremental.updated_field if source.incremental else None,
        )
        base: dict[str, str | int] = {}
        if source.page_size_param:
            base[source.page_size_param] = source.page_size
        if updated_since and source.incremental:
            base[source.incremental.param] = updated_since
        request = self._http.request(source.endpoint, base)
        followed: set[str] = set()
        read = 0
        for number in itertools.count(1):
            ref = self._http.ref(request)
            url = f"{self._http.origin}{ref}"
            response, body = self._http.get(request)
            records = self._records(url, body)
            try:
                order.check_page(records)
            except FeedOrderError as problem:
                raise self._http.error(
                    f"GET {url} {problem}; stopping after {number - 1} good pages"
                ) from None
            yield Page(number, ref, records)
            read += len(records)
            following = self._following(url, response, body, base, number, read, not records)
            if following is None:
                return
            request = following
            if str(request.url) in followed:
                raise self._http.error(
                    f"GET {url} returned a {_NEXT[pagination.style]} already followed; the API "
                    "is repeating pages, stopping instead of looping"
                )
            followed.add(str(request.url))


def ensure_source_table(con: duckdb.DuckDBPyConnection, source: HttpApiSource) -> None:
    """Create raw.<name> if absent; outside the batch's transaction, so that a failed
    batch leaves the (empty) table behind like any other raw table."""
    ensure_raw_table(con, source.name, source.contract.names)


@dataclass(frozen=True)
class HttpReport:
    pages: int
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    retries: int
    cursor_before: str | None
    cursor_after: str | None
    refs: tuple[str, ...]


def ingest_http(
    con: duckdb.DuckDBPyConnection,
    client: HttpApiClient,
    *,
    batch_id: str,
    ingested_at: datetime,
    limits: RowContractLimits,
) -> HttpReport:
    """Copy the records changed since the stored cursor into raw.<name>, page by page.

    The caller owns the DuckDB transaction: pages, rejected rows and the moved cursor
    commit together, so a failure halfway (an API fault, a page that repeats or goes
    backwards) leaves the cursor where it was and loads nothing; the next run starts over
    from it. Each row's ``_source_ref`` names its page: ``page <n>: <path?query>``.
    """
    source = client.source
    contract = source.contract.row_contract(source.name)
    updated = source.incremental.updated_field if source.incremental else None
    key = tuple(source.contract.primary_key)
    ensure_source_table(con, source)
    cursor_before = read_cursor(con, source.ledger) if updated else None
    cursor_after = cursor_before
    rows_read = rows_loaded = rows_rejected = 0
    refs: list[str] = []
    for page in client.iter_pages(cursor_before):
        refs.append(page.request_ref)
        rows_read += len(page.records)
        split = append_records(
            con,
            contract,
            page.records,
            provenance=Provenance(
                source.ledger, f"page {page.number}: {page.request_ref}", batch_id, ingested_at
            ),
            limits=limits,
            dedupe_on=key + ((updated,) if updated and updated not in key else ()),
            cursor=cursor_before,
            cursor_column=updated,
        )
        rows_loaded += split.rows_loaded
        rows_rejected += split.rows_rejected
        # iter_pages checked that the updated field never decreases
        if updated and (accepted := last_accepted(page.records, split)) is not None:
            cursor_after = str(accepted[updated])
    if cursor_after is not None and cursor_after != cursor_before:
        write_cursor(con, source.ledger, cursor_after)
    return HttpReport(
        len(refs),
        rows_read,
        rows_loaded,
        rows_rejected,
        client.retries_made,
        cursor_before,
        cursor_after,
        tuple(refs),
    )
