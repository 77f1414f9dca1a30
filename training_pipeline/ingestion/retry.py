"""Retrying a request that failed for a reason that may pass: one helper, on tenacity.

The caller's ``attempt`` function sends one request and says how it went:

* it returns a value: done;
* it raises ``Retryable`` (a 5xx, a 429, a timeout, a dropped connection), optionally
  with the wait the server asked for (``Retry-After``): tried again after exponential
  backoff, or after that wait;
* it raises anything else (a 4xx, a malformed body, an unusable URL): stopped at once,
  because trying again cannot make it right.

A server asking for a wait longer than ``max_retry_after_s`` either stops the request
at once (``RetryAfterTooLong``: a client that waited a day would hang its run; the next
run asks again) or, for a caller that must not give up early, waits the cap instead
(``cap_retry_after``).  After ``attempts`` failures, ``RetriesExhausted`` says how many
attempts were made, for how long, and the last failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class Retryable(Exception):
    """One attempt failed in a way that may pass; ``failure`` says how, for the error."""

    def __init__(self, failure: str, retry_after_s: float | None = None) -> None:
        super().__init__(failure)
        self.failure = failure
        self.retry_after_s = retry_after_s


class NotRetryable(Exception):
    """One attempt failed in a way a retry cannot change (a 4xx, an unusable URL)."""

    def __init__(self, failure: str) -> None:
        super().__init__(failure)
        self.failure = failure


class RetryAfterTooLong(Exception):
    """The server asked to wait longer than the policy allows."""

    def __init__(self, failure: str, wait_s: float, limit_s: float) -> None:
        super().__init__(f"{failure}: asked to wait {wait_s:.0f} s, more than {limit_s:g} s")
        self.failure, self.wait_s, self.limit_s = failure, wait_s, limit_s


class RetriesExhausted(Exception):
    """Every attempt failed; ``failure`` is the last one's."""

    def __init__(self, failure: str, attempts: int, elapsed_s: float) -> None:
        super().__init__(f"failed after {attempts} attempts in {elapsed_s:.1f} s: {failure}")
        self.failure, self.attempts, self.elapsed_s = failure, attempts, elapsed_s


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    backoff_s: float = 0.5  # the first wait; each next one doubles, up to max_backoff_s
    max_backoff_s: float = 10.0
    max_retry_after_s: float = 120.0
    cap_retry_after: bool = False  # True: wait the cap; False: RetryAfterTooLong

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")


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


def _waiter(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    backoff = wait_exponential(multiplier=policy.backoff_s, max=policy.max_backoff_s)

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, Retryable) and error.retry_after_s is not None:
            return min(error.retry_after_s, policy.max_retry_after_s)
        return backoff(state)

    return wait


def call_with_retries(
    attempt: Callable[[], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[Retryable], None] = lambda failure: None,
) -> tuple[T, int]:
    """``attempt()``'s value and the number of attempts it took.

    Raises:
        RetriesExhausted: every one of ``policy.attempts`` attempts raised ``Retryable``.
        RetryAfterTooLong: the server asked for a wait beyond the policy's cap (and the
            policy does not cap it).
        Exception: whatever else ``attempt`` raised, at once.
    """
    started = time.monotonic()
    attempts = 0

    def one_attempt() -> T:
        nonlocal attempts
        attempts += 1
        try:
            return attempt()
        except Retryable as failure:
            wait = failure.retry_after_s
            if wait is not None and wait > policy.max_retry_after_s and not policy.cap_retry_after:
                raise RetryAfterTooLong(failure.failure, wait, policy.max_retry_after_s) from None
            raise

    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts),
        wait=_waiter(policy),
        retry=retry_if_exception_type(Retryable),
        sleep=sleep,
        before_sleep=lambda state: on_retry(state.outcome.exception()),  # type: ignore[union-attr,arg-type]
        reraise=True,
    )
    try:
        return retrying(one_attempt), attempts
    except Retryable as last:
        raise RetriesExhausted(last.failure, attempts, time.monotonic() - started) from None
