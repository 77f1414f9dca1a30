"""Alerts: a JSON line on disk for every one, and a Slack-style webhook when configured.

Plain Python, no Dagster: ``training_pipeline.automation.failures`` turns a failed run's
events into ``Alert``s and ``lifecycle_alerts`` the model's lifecycle (drift, retraining,
promotion, rollback, pins, stale training data); each is handed to ``deliver``, or to
``deliver_once`` when alerts of one episode share a ``dedup_key``.

The log line is written for every alert whether or not a webhook is configured, so the
history survives a webhook that is down.  The webhook URL comes from
``TRAINING_PIPELINE_ALERT_WEBHOOK_URL``, read once with the other settings and handed
over as an ``AlertDestination``; posting it is ``alert_webhook``'s.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from training_pipeline.alert_record import SUMMARY_CHARS, TITLES, Alert, AlertKind, clip
from training_pipeline.alert_webhook import AlertDeliveryError, post_webhook, slack_payload
from training_pipeline.environment import (  # noqa: F401 (WEBHOOK_URL_ENV: imported from here)
    DEFAULT_UI_URL,
    WEBHOOK_URL_ENV,
)
from training_pipeline.settings import Settings

__all__ = [
    "SUMMARY_CHARS",
    "TITLES",
    "Alert",
    "AlertDeliveryError",
    "AlertDestination",
    "AlertKind",
    "DeliveryOutcome",
    "alert_log_path",
    "clip",
    "deliver",
    "deliver_once",
    "post_webhook",
    "slack_payload",
    "write_alert_log",
]


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


def deliver_once(alert: Alert, destination: AlertDestination) -> DeliveryOutcome | None:
    """``deliver`` the alert unless the log already holds one with its ``dedup_key``.

    Several sensors and runs may raise the same episode's alert; the check and the
    delivery happen under one lock beside the log, so only the first gets through.

    Returns:
        The delivery outcome, or None when the episode had been alerted already.
    """
    if alert.dedup_key is None:
        raise ValueError(f"a {alert.kind} alert without a dedup_key cannot be deduplicated")
    log = destination.log
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log.with_name(log.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if alert.dedup_key in logged_dedup_keys(log):
            return None
        return deliver(alert, destination)


def logged_dedup_keys(log: Path) -> set[str]:
    """Every ``dedup_key`` in the alert log."""
    if not log.exists():
        return set()
    keys = set()
    with log.open(encoding="utf-8") as lines:
        for line in lines:
            if '"dedup_key": "' in line:
                keys.add(json.loads(line)["dedup_key"])
    return keys
