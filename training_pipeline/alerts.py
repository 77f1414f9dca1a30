"""Alerts for failed runs: what went wrong, a JSON line on disk, and a Slack-style webhook.

Plain Python, no Dagster: ``training_pipeline.automation.failures`` turns a failed run's
events into ``Alert``s, and the sensor in ``training_pipeline.automation.alerts`` hands
each to ``deliver``.

The log line is written for every alert whether or not a webhook is configured, so the
history survives a webhook that is down.  The webhook URL is a secret (whoever holds it
can post to the channel): it comes from ``TRAINING_PIPELINE_ALERT_WEBHOOK_URL``, read
once with the other settings and handed over as an ``AlertDestination``, and every
message that could carry it, including httpx's own request log, shows it masked to its
scheme and host.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from training_pipeline.environment import (  # noqa: F401 (WEBHOOK_URL_ENV: imported from here)
    DEFAULT_UI_URL,
    WEBHOOK_URL_ENV,
)
from training_pipeline.ingestion.retry import (
    RETRYABLE_STATUS,
    NotRetryable,
    RetriesExhausted,
    Retryable,
    RetryPolicy,
    call_with_retries,
)
from training_pipeline.masking import mask_url
from training_pipeline.settings import Settings

AlertKind = Literal[
    "run_failure",
    "blocking_check_failed",
    "automatic_rollback",
    "production_failed_verification",
    "rows_rejected",
]
TITLES: dict[str, str] = {
    "run_failure": "Run failed",
    "blocking_check_failed": "Blocking check failed",
    "automatic_rollback": "Deployment rolled back automatically",
    # Sent by the step that found it (the run goes on with the model rolled back to).
    "production_failed_verification": "Production model failed verification",
    "rows_rejected": "Rows rejected at ingestion",
}
SUMMARY_CHARS = 500
MAX_BACKOFF_S = 8.0


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    job_name: str
    run_id: str
    message: str
    timestamp: datetime  # when the run failed, UTC
    error_summary: str = ""
    asset_key: str | None = None
    check_name: str | None = None
    step_key: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in TITLES:
            raise ValueError(f"unknown alert kind {self.kind!r}; expected one of {list(TITLES)}")
        if self.timestamp.utcoffset() is None:
            raise ValueError("an alert's timestamp must be timezone-aware (UTC)")

    @property
    def link_path(self) -> str:
        """The run's page, relative to the Dagster UI's base URL."""
        return f"/runs/{self.run_id}"

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["timestamp"] = self.timestamp.astimezone(UTC).isoformat()
        record["link_path"] = self.link_path
        return record


def clip(text: str, limit: int = SUMMARY_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_payload(alert: Alert, ui_url: str = DEFAULT_UI_URL) -> dict[str, Any]:
    """A Slack incoming-webhook body: ``text`` for notifications, ``blocks`` for display.

    Block Kit limits are respected (header 150 characters, section text 3000, field 2000)
    and ``&``, ``<`` and ``>`` are escaped as Slack's mrkdwn requires.
    """
    title = TITLES[alert.kind]
    link = ui_url.rstrip("/") + alert.link_path
    facts = {
        "Job": alert.job_name,
        "Run": alert.run_id,
        "Asset": alert.asset_key,
        "Check": alert.check_name,
        "Step": alert.step_key,
        "Failed at": alert.timestamp.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
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
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"<{link}|Open the run in Dagster>"}],
        }
    )
    text = f"{title}: job {alert.job_name}, run {alert.run_id}. {alert.message}"
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


@dataclass(frozen=True)
class DeliveryOutcome:
    status: Literal["posted", "failed", "not_configured"]
    attempts: int = 0
    error: str | None = None


def alert_log_path(settings: Settings) -> Path:
    return settings.data_dir / "alerts" / "alerts.jsonl"


@dataclass(frozen=True)
class AlertDestination:
    """Where alerts go: the log always, the webhook when there is one (``None``: none),
    with links into the Dagster UI at ``ui_url``."""

    log: Path
    webhook_url: str | None = None
    ui_url: str = DEFAULT_UI_URL

    @classmethod
    def of(cls, settings: Settings) -> AlertDestination:
        return cls(alert_log_path(settings), settings.webhook_url, settings.ui_url)


def write_alert_log(alert: Alert, path: Path, outcome: DeliveryOutcome | None = None) -> None:
    """Append the alert as one JSON line to an O_APPEND descriptor, fsynced.

    Writers take an exclusive lock on the file for the append, so concurrent writers (two
    sensors, two processes) never interleave within a line, and a line reported written
    survives a crash.  When the disk is full, the part of the line that did get written
    is cut off again and the error names the file: the log never ends in half a line.
    """
    record = alert.to_dict()
    if outcome is not None:
        record |= {
            "delivery": outcome.status,
            "delivery_attempts": outcome.attempts,
            "delivery_error": outcome.error,
        }
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as error:
        raise OSError(error.errno, f"cannot open the alert log {path}: {error.strerror}") from error
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when the descriptor closes
        size = os.fstat(fd).st_size
        try:
            remaining = memoryview(line)
            while remaining:  # a write cut short by a full disk says why on the next one
                remaining = remaining[os.write(fd, remaining) :]
            os.fsync(fd)
        except OSError as error:
            os.ftruncate(fd, size)
            raise OSError(
                error.errno,
                f"could not append the {alert.kind} alert for run {alert.run_id} to {path}: "
                f"{error.strerror}; the log was left as it was",
            ) from error
    finally:
        os.close(fd)


def deliver(
    alert: Alert,
    destination: AlertDestination,
    *,
    timeout_s: float = 5.0,
    max_attempts: int = 4,
    backoff_s: float = 0.5,
) -> DeliveryOutcome:
    """Post the alert when a webhook is configured, then log it with how that went.

    A failed post does not raise here: it is recorded in the log line
    (``delivery_error``) and returned, so the caller can log every alert of a run
    before it fails (see the sensor).  Anything else that goes wrong while posting (a
    bug) propagates, but the line is still written first, marked failed.
    """
    url, log = destination.webhook_url, destination.log
    if not url:
        outcome = DeliveryOutcome("not_configured")
        write_alert_log(alert, log, outcome)
        return outcome
    outcome = DeliveryOutcome("failed", error="posting raised an unexpected error")
    try:
        attempts = post_webhook(
            alert, url, timeout_s, max_attempts, backoff_s, ui_url=destination.ui_url
        )
        outcome = DeliveryOutcome("posted", attempts)
    except AlertDeliveryError as error:
        outcome = DeliveryOutcome("failed", error.attempts, str(error))
    finally:
        write_alert_log(alert, log, outcome)
    return outcome
