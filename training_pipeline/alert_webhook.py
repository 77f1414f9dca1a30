"""Alerts to a Slack-style webhook: the message body, and posting it with retries.

The webhook URL is a secret (whoever holds it can post to the channel): every message
that could carry it, including httpx's own request log, shows it masked to its scheme
and host.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC
from typing import Any
from urllib.parse import urlsplit

import httpx

from training_pipeline.alert_record import TITLES, Alert, clip
from training_pipeline.environment import DEFAULT_UI_URL
from training_pipeline.ingestion.retry import (
    RETRYABLE_STATUS,
    NotRetryable,
    RetriesExhausted,
    Retryable,
    RetryPolicy,
    call_with_retries,
)
from training_pipeline.masking import mask_url

MAX_BACKOFF_S = 8.0


def slack_payload(alert: Alert, ui_url: str = DEFAULT_UI_URL) -> dict[str, Any]:
    """A Slack incoming-webhook body: ``text`` for notifications, ``blocks`` for display.

    Block Kit limits are respected (header 150 characters, section text 3000, field 2000)
    and ``&``, ``<`` and ``>`` are escaped as Slack's mrkdwn requires.
    """
    title = TITLES[alert.kind]
    link = ui_url.rstrip("/") + alert.link_path
    when = alert.timestamp.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    facts = {
        "Model": alert.model,
        "Job": alert.job_name,
        "Run": alert.run_id,
        "Asset": alert.asset_key,
        "Check": alert.check_name,
        "Step": alert.step_key,
        **{name.replace("_", " ").capitalize(): str(v) for name, v in alert.details.items()},
        ("At" if alert.model else "Failed at"): when,
    }
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(title, 150)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": clip(_esc(alert.message), 3000)}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": clip(f"*{name}*\n{_esc(value)}", 2000)}
                for name, value in facts.items()
                if value
            ],
        },
    ]
    if alert.error_summary:
        summary = clip(_esc(alert.error_summary), 2990)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"```{summary}```"}})
    opened = "run" if alert.run_id else "asset"
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"<{link}|Open the {opened} in Dagster>"}],
        }
    )
    about = f"job {alert.job_name}, run {alert.run_id}" if alert.run_id else f"model {alert.model}"
    text = f"{title}: {about}. {alert.message}"
    return {"text": _esc(text), "blocks": blocks}


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class AlertDeliveryError(RuntimeError):
    """The webhook did not accept the alert; the message shows the URL masked."""

    def __init__(self, message: str, attempts: int = 0) -> None:
        super().__init__(message)
        self.attempts = attempts


def _scrub(text: str, url: str) -> str:
    """``text`` with the URL, and its path on its own (the token), masked."""
    parts = urlsplit(url)
    secret = parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
    text = text.replace(url, mask_url(url))
    return text.replace(secret, "***") if len(secret) >= 4 else text


@contextmanager
def _httpx_log_masked(url: str) -> Iterator[None]:
    """httpx logs every request's full URL at INFO; mask ours while we post."""

    def mask(record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if url in message:
            record.msg, record.args = _scrub(message, url), ()
        return True

    logger = logging.getLogger("httpx")
    logger.addFilter(mask)
    try:
        yield
    finally:
        logger.removeFilter(mask)


def post_webhook(
    alert: Alert,
    url: str,
    timeout_s: float = 5.0,
    max_attempts: int = 4,
    backoff_s: float = 0.5,
    *,
    ui_url: str = DEFAULT_UI_URL,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """POST the alert; retry 5xx, 429, timeouts and connection errors with backoff.

    Returns:
        The number of attempts it took.

    Raises:
        AlertDeliveryError: at once on another non-2xx answer (a wrong or revoked URL
            does not heal), or after ``max_attempts``; the URL in it is masked.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    body = slack_payload(alert, ui_url)
    # A Retry-After beyond the backoff cap is waited as the cap: an alert is worth a
    # retry, and a sensor tick must not hang on it.
    policy = RetryPolicy(
        attempts=max_attempts,
        backoff_s=backoff_s,
        max_backoff_s=MAX_BACKOFF_S,
        max_retry_after_s=MAX_BACKOFF_S,
        cap_retry_after=True,
    )
    attempts = 0

    def attempt(client: httpx.Client) -> int:
        nonlocal attempts
        attempts += 1
        try:
            response = client.post(url, json=body)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as error:  # will not heal
            raise NotRetryable(f"the URL is not usable: {type(error).__name__}: {error}") from None
        except httpx.TransportError as error:  # timeouts and connection failures
            raise Retryable(f"{type(error).__name__}: {error}") from None
        if response.is_success:
            return attempts
        failure = f"HTTP {response.status_code} {response.text[:200]!r}"
        if response.status_code not in RETRYABLE_STATUS:
            raise NotRetryable(failure)
        retry_after = response.headers.get("retry-after", "").strip()
        raise Retryable(failure, float(retry_after) if retry_after.isdigit() else None)

    with _httpx_log_masked(url), httpx.Client(timeout=timeout_s) as client:
        try:
            return call_with_retries(lambda: attempt(client), policy, sleep=sleep)[0]
        except (NotRetryable, RetriesExhausted) as error:
            failure = error.failure
    # `from None`: the httpx exception carries the request, and with it the secret URL.
    message = (
        f"alert webhook {mask_url(url)} did not accept the {alert.kind} alert for run "
        f"{alert.run_id} after {attempts} attempt(s); last error: {failure}"
    )
    raise AlertDeliveryError(_scrub(message, url), attempts) from None
