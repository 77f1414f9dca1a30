"""Why a run failed, as alerts: the rules, applied to plain facts read from its events,
and their delivery, once per run wherever the run was launched.

No Dagster here: ``training_pipeline.automation.alerts`` reads the run's step failures and
asset check evaluations out of the event log into these dataclasses, so the rules are
tested on hand-made runs as well as on real ones.
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from training_pipeline.alerts import Alert, AlertDestination, DeliveryOutcome, clip, deliver
from training_pipeline.settings import Settings

# Dagster fails the step that emitted a failed blocking check with this error class.
CHECK_FAILED_ERROR = "DagsterAssetCheckFailedError"
# A model's `<name>/production` raises a Failure whose metadata carries this key.
ROLLBACK_MARKER = "rolled_back"
MAX_ATTEMPTS = 4
# The kinds `classify_failed_run` gives: a run with a line of one of these was alerted.
FAILED_RUN_KINDS = frozenset({"run_failure", "blocking_check_failed", "automatic_rollback"})


@dataclass(frozen=True)
class CheckEvaluation:
    asset_key: str
    check_name: str
    passed: bool
    blocking: bool
    severity: str  # "ERROR" or "WARN"; only ERROR blocks
    step_key: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def blocked(self) -> bool:
        return not self.passed and self.blocking and self.severity == "ERROR"


@dataclass(frozen=True)
class StepFailure:
    step_key: str
    error_class: str
    error_summary: str
    metadata: Mapping[str, Any] = field(default_factory=dict)  # a dg.Failure's metadata


@dataclass(frozen=True)
class FailedRun:
    job_name: str
    run_id: str
    failed_at: datetime
    failure_message: str
    failure_summary: str = ""
    step_failures: tuple[StepFailure, ...] = ()
    check_evaluations: tuple[CheckEvaluation, ...] = ()


def classify_failed_run(run: FailedRun) -> list[Alert]:
    """One alert per cause of a failed run; never none.

    Each failed blocking check gives a ``blocking_check_failed`` alert (whether the run
    failed because of it or while it failed); a step whose failure carries the rollback
    marker gives ``automatic_rollback``; any other failed step gives ``run_failure``.  The
    step failure Dagster raises for a blocking check is not reported twice.  A run that
    failed without a failed step (a crashed worker, a launch error) gives one
    ``run_failure`` from the run's own failure event.
    """
    base = {"job_name": run.job_name, "run_id": run.run_id, "timestamp": run.failed_at}
    alerts: list[Alert] = []
    blocked = [c for c in run.check_evaluations if c.blocked]
    for check in blocked:
        alerts.append(
            Alert(
                kind="blocking_check_failed",
                message=f"Blocking check `{check.check_name}` on `{check.asset_key}` failed: "
                "the assets that depend on it were not materialized.",
                error_summary=clip("; ".join(f"{k}: {v}" for k, v in check.metadata.items())),
                asset_key=check.asset_key,
                check_name=check.check_name,
                step_key=check.step_key,
                **base,
            )
        )
    blocked_steps = {c.step_key for c in blocked}
    for step in run.step_failures:
        if step.error_class == CHECK_FAILED_ERROR and step.step_key in blocked_steps:
            continue
        if ROLLBACK_MARKER in step.metadata:
            alerts.append(
                Alert(
                    kind="automatic_rollback",
                    message=_rollback_message(step),
                    error_summary=clip(step.error_summary),
                    asset_key=step.step_key,
                    step_key=step.step_key,
                    **base,
                )
            )
        else:
            alerts.append(
                Alert(
                    kind="run_failure",
                    message=f"Step `{step.step_key}` failed.",
                    error_summary=clip(step.error_summary),
                    step_key=step.step_key,
                    **base,
                )
            )
    if not alerts:
        alerts.append(
            Alert(
                kind="run_failure",
                message=run.failure_message,
                error_summary=clip(run.failure_summary),
                **base,
            )
        )
    return alerts


def _rollback_message(step: StepFailure) -> str:
    production = step.metadata.get("production", "(unknown)")
    if step.metadata.get("withdrawn"):
        return (
            f"Deployment in `{step.step_key}` failed and the previous model could not be "
            "restored: production is now EMPTY."
        )
    return (
        f"Deployment in `{step.step_key}` failed and was rolled back automatically: "
        f"production is `{production}`."
    )


@dataclass
class RecentFailure:
    """After a failed post, alerts within ``window_s`` get one attempt instead of four.

    A tick must finish within Dagster's sensor timeout (60 s by default), and one
    alert to a webhook that times out takes up to 23.5 s with four attempts.  A timed-out
    tick does not advance the cursor, so several failed runs in one tick would be
    retried, and logged again, forever.
    """

    window_s: float = 120.0
    failed_at: float = float("-inf")

    def attempts(self) -> int:
        return 1 if time.monotonic() - self.failed_at < self.window_s else MAX_ATTEMPTS

    def record(self, outcome: DeliveryOutcome) -> None:
        if outcome.status == "failed":
            self.failed_at = time.monotonic()


def deliver_failed_run(
    run: FailedRun, settings: Settings, health: RecentFailure
) -> list[tuple[Alert, DeliveryOutcome]]:
    """Deliver the run's alerts (``deliver``) unless the alert log already has that run.

    The one path for every failed run: the run-failure sensor calls it for runs the
    daemon saw (UI, sensors, schedules), the CLI runner for the runs it executed itself.
    Both may see the same run, so the check and the delivery happen under one lock on
    the log: the second caller finds the run logged and sends nothing.

    Returns:
        Each alert with its delivery outcome; empty when the run had been alerted.
    """
    destination = AlertDestination.of(settings)
    log = destination.log
    with _locked(log.with_name(log.name + ".lock")):
        if already_alerted(log, run.run_id):
            return []
        delivered = []
        for alert in classify_failed_run(run):
            outcome = deliver(alert, destination, max_attempts=health.attempts())
            health.record(outcome)
            delivered.append((alert, outcome))
        return delivered


def already_alerted(log: Path, run_id: str) -> bool:
    """Whether the log holds a failed-run alert for ``run_id`` (lines are whole: see
    ``write_alert_log``)."""
    if not log.exists():
        return False
    needle = json.dumps({"run_id": run_id})[1:-1]  # the key as json.dumps writes it
    with log.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if needle not in line:
                continue
            try:
                kind = json.loads(line)["kind"]
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise ValueError(
                    f"line {number} of the alert log {log} mentions run {run_id} but is not "
                    f"an alert ({type(error).__name__}: {error}); repair or remove it"
                ) from None
            if kind in FAILED_RUN_KINDS:
                return True
    return False


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield
