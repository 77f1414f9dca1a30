"""The one retry helper both HTTP callers use (ticket-style APIs and the alert webhook)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from training_pipeline.ingestion.retry import (
    RetriesExhausted,
    Retryable,
    RetryAfterTooLong,
    RetryPolicy,
    call_with_retries,
    retry_after_s,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def scripted(*outcomes: object) -> Callable[[], object]:
    """An attempt that raises or returns each outcome in turn."""
    queue = list(outcomes)

    def attempt() -> object:
        outcome = queue.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return attempt


def test_waits_double_from_the_backoff_up_to_the_cap_and_the_value_comes_back():
    slept: list[float] = []
    attempt = scripted(*[Retryable("HTTP 503")] * 4, "page")
    policy = RetryPolicy(attempts=5, backoff_s=0.5, max_backoff_s=3.0)
    assert call_with_retries(attempt, policy, sleep=slept.append) == ("page", 5)
    assert slept == [0.5, 1.0, 2.0, 3.0]


def test_after_the_last_attempt_it_stops_without_waiting_and_names_the_last_failure():
    slept: list[float] = []
    attempt = scripted(Retryable("HTTP 500"), Retryable("HTTP 503"), Retryable("ReadTimeout"))
    with pytest.raises(RetriesExhausted) as raised:
        call_with_retries(attempt, RetryPolicy(attempts=3, backoff_s=0.1), sleep=slept.append)
    assert (raised.value.attempts, raised.value.failure) == (3, "ReadTimeout")
    assert len(slept) == 2


def test_an_error_that_is_not_retryable_stops_at_once():
    slept: list[float] = []
    attempt = scripted(Retryable("HTTP 503"), ValueError("HTTP 404"), "never reached")
    with pytest.raises(ValueError, match="HTTP 404"):
        call_with_retries(attempt, RetryPolicy(attempts=5), sleep=slept.append)
    assert slept == [0.5]


def test_a_retry_after_within_the_cap_replaces_the_backoff():
    slept: list[float] = []
    attempt = scripted(Retryable("HTTP 429", retry_after_s=7.0), "page")
    policy = RetryPolicy(backoff_s=0.5, max_retry_after_s=10.0)
    assert call_with_retries(attempt, policy, sleep=slept.append) == ("page", 2)
    assert slept == [7.0]


def test_a_retry_after_beyond_the_cap_fails_at_once_naming_the_wait_even_on_the_last_attempt():
    slept: list[float] = []
    attempt = scripted(Retryable("HTTP 429", retry_after_s=3600.0))
    policy = RetryPolicy(attempts=1, max_retry_after_s=120.0)
    with pytest.raises(RetryAfterTooLong) as raised:
        call_with_retries(attempt, policy, sleep=slept.append)
    assert (raised.value.wait_s, raised.value.limit_s, slept) == (3600.0, 120.0, [])
    assert "asked to wait 3600 s, more than 120 s" in str(raised.value)


def test_a_capping_policy_waits_the_cap_instead_of_failing():
    slept: list[float] = []
    attempt = scripted(Retryable("HTTP 429", retry_after_s=3600.0), "posted")
    policy = RetryPolicy(attempts=4, max_retry_after_s=8.0, cap_retry_after=True)
    assert call_with_retries(attempt, policy, sleep=slept.append) == ("posted", 2)
    assert slept == [8.0]


def test_every_retry_is_reported_before_its_wait():
    seen: list[str] = []
    attempt = scripted(Retryable("first"), Retryable("second"), "done")
    call_with_retries(
        attempt, RetryPolicy(), sleep=lambda _: None, on_retry=lambda f: seen.append(f.failure)
    )
    assert seen == ["first", "second"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("Sun, 01 Mar 2026 12:01:30 GMT", 90.0),
        ("Sun, 01 Mar 2026 11:00:00 GMT", 0.0),  # a date passed: retry now
        ("soon", None),
        ("-5", None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date_and_nonsense_is_ignored(header, expected):
    assert retry_after_s(header, NOW) == expected


def test_a_policy_without_attempts_is_refused():
    with pytest.raises(ValueError, match="attempts must be at least 1"):
        RetryPolicy(attempts=0)
