"""One JSON GET against a declared HTTP API, with retries, deadlines and no secrets shown.

Transient failures (5xx, 429, connection errors, timeouts) are retried with exponential
backoff, or after the server's ``Retry-After`` (seconds or an HTTP date) when it gives
one (``retry.py``). Anything else stops the ingestion with an error naming the request,
because retrying a malformed answer cannot make it right and skipping it would lose
records: a 4xx, a body that is not JSON, a ``Retry-After`` longer than the declaration's
``retry.max_retry_after_s`` (waiting a day would hang the run; the next run asks again).

Each attempt has a deadline of ``timeout_s`` that also covers a body trickling in (the
per-read timeout alone would not), so one request takes at most about
``attempts × 2 × timeout_s`` plus the waits between attempts.

Errors name the URL without credentials, and never the password or the Authorization
header a base URL like ``https://user:password@host`` makes httpx send.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from training_pipeline.ingestion.retry import (
    RETRYABLE_STATUS,
    RetriesExhausted,
    Retryable,
    RetryAfterTooLong,
    RetryPolicy,
    call_with_retries,
    retry_after_s,
)


class HttpApiError(RuntimeError):
    """The API answered in a way the client cannot use."""


class _DeadlineExceeded(Exception):
    """One attempt took longer than the timeout in total."""


class JsonGetter:
    """GETs JSON from one API (``base_url``), each request retried by ``policy``."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float,
        policy: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout_s, transport=transport
        )
        url = self._client.base_url
        self.origin = f"{url.scheme}://{url.netloc.decode()}"  # no user or password
        self._secrets = _secrets_of(url)
        self._timeout_s = timeout_s
        self._policy = policy
        self._sleep = sleep
        self._now = now
        self.retries_made = 0

    def close(self) -> None:
        self._client.close()

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def error(self, message: str) -> HttpApiError:
        return HttpApiError(self.redact(message))

    def request(self, target: str, params: Mapping[str, str | int] | None) -> httpx.Request:
        """A GET of ``target``: a path under the base URL with ``params`` as its query,
        or (``params`` None) a URL taken as it is, as a Link header gives it."""
        return self._client.build_request(
            "GET", target, params=None if params is None else dict(params)
        )

    def ref(self, request: httpx.Request) -> str:
        """The request's path and query: how provenance and errors name a page."""
        query = request.url.query.decode()
        return f"{request.url.path}?{query}" if query else request.url.path

    def get(self, request: httpx.Request) -> tuple[httpx.Response, Any]:
        """The response and its JSON body, retried as the module says."""
        url = f"{self.origin}{self.ref(request)}"

        def on_retry(_: Retryable) -> None:
            self.retries_made += 1

        try:
            response, _ = call_with_retries(
                lambda: self._attempt(request), self._policy, sleep=self._sleep, on_retry=on_retry
            )
        except RetryAfterTooLong as long:
            raise self.error(
                f"GET {url} answered {long.failure} asking to retry after {long.wait_s:.0f} s, "
                f"longer than the {long.limit_s:g} s this client waits (max_retry_after_s); "
                "stopping instead of hanging the run"
            ) from None
        except RetriesExhausted as exhausted:
            raise self.error(
                f"GET {url} failed after {exhausted.attempts} attempts in "
                f"{exhausted.elapsed_s:.1f} s; last error: {exhausted.failure}"
            ) from None
        if response.status_code != 200:
            raise self.error(
                f"GET {url} answered HTTP {response.status_code}: {self._excerpt(response, 200)}"
            )
        try:
            return response, response.json()
        except ValueError as error:
            raise self.error(
                f"GET {url} answered a body that is not JSON: {self._excerpt(response, 80)!r}"
            ) from error

    def _attempt(self, request: httpx.Request) -> httpx.Response:
        try:
            response = self._send(request)
        except httpx.TimeoutException as error:
            raise Retryable(
                f"{type(error).__name__} after the {self._timeout_s:g} s timeout"
            ) from None
        except _DeadlineExceeded:
            raise Retryable(
                f"no complete answer within the {self._timeout_s:g} s timeout"
            ) from None
        except httpx.TransportError as error:  # connection refused, reset, ...
            raise Retryable(self.redact(f"{type(error).__name__}: {error}")) from None
        if response.status_code not in RETRYABLE_STATUS:
            return response
        failure = f"HTTP {response.status_code}"
        header = response.headers.get("retry-after")
        if header is None:
            raise Retryable(failure)
        wait = retry_after_s(header, self._now())
        if wait is None:
            raise Retryable(f"{failure} (unreadable Retry-After {header!r}: backed off instead)")
        raise Retryable(f"{failure} (Retry-After: {header})", retry_after_s=wait)

    def _excerpt(self, response: httpx.Response, length: int) -> str:
        """The start of a body for an error; redacted before it is cut, so that a cut
        cannot leave half a secret behind (a gateway may echo the request's headers)."""
        return self.redact(response.text)[:length]

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


def _secrets_of(url: httpx.URL) -> list[str]:
    """What of the base URL must never be shown: its password, also percent-encoded and
    as the Basic Authorization value httpx builds from it."""
    if not url.password:
        return []
    userinfo = f"{url.username}:{url.password}"
    basic = base64.b64encode(userinfo.encode()).decode()
    raw_password = url.userinfo.decode().partition(":")[2]
    return [s for s in (basic, raw_password, url.password) if s]
