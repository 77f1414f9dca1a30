"""The run-failure sensor: every failed run in this code location becomes an alert.

Thin on purpose: it reads the failed run's step failures and asset check evaluations out
of the event log, lets ``classify_failed_run`` decide what to say, and hands each alert
to ``deliver`` (the JSONL log always, the webhook when configured).

A webhook that does not accept an alert fails the tick, after every alert of the run has
been logged.  Dagster still advances a run-status sensor's cursor past a run whose
evaluation raised (it would rather skip than repeat side effects), so nothing is posted
twice, while the tick turns red in the UI with the (masked) reason instead of the
failure being visible only in a log line nobody reads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg

from training_pipeline.alerts import AlertDeliveryError, DeliveryOutcome, deliver
from training_pipeline.automation.failures import (
    CheckEvaluation,
    FailedRun,
    StepFailure,
    classify_failed_run,
)
from training_pipeline.settings import Settings

# Dagster wraps an exception raised by user code in this error; the cause is the news.
USER_CODE_WRAPPER = "DagsterExecutionStepExecutionError"
MAX_ATTEMPTS = 4


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


webhook_health = RecentFailure()  # lives as long as the code server process


@dg.run_failure_sensor(
    name="alert_on_run_failure",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every failed run of this code location: a line in <data>/alerts/alerts.jsonl "
    "and, when TRAINING_PIPELINE_ALERT_WEBHOOK_URL is set, a Slack-style webhook post. "
    "Failed blocking checks and automatic rollbacks get alerts of their own kind.",
)
def alert_on_run_failure(context: dg.RunFailureSensorContext) -> None:
    settings = Settings.from_env()
    failed = failed_run_from_events(context.instance, context.dagster_run, context.failure_event)
    undelivered = []
    for alert in classify_failed_run(failed):
        outcome = deliver(alert, settings, max_attempts=webhook_health.attempts())
        webhook_health.record(outcome)
        context.log.info(f"{alert.kind} alert for run {alert.run_id}: {outcome.status}")
        if outcome.error:
            context.log.warning(outcome.error)
            undelivered.append(outcome.error)
    if undelivered:
        raise AlertDeliveryError("; ".join(undelivered))


def failed_run_from_events(
    instance: dg.DagsterInstance, run: dg.DagsterRun, failure_event: dg.DagsterEvent
) -> FailedRun:
    """The facts ``classify_failed_run`` needs, read from the run's event log."""
    records = instance.get_records_for_run(
        run.run_id,
        of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.ASSET_CHECK_EVALUATION},
    ).records
    steps: list[StepFailure] = []
    checks: list[CheckEvaluation] = []
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        data = event.event_specific_data
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            checks.append(
                CheckEvaluation(
                    asset_key=data.asset_key.to_user_string(),
                    check_name=data.check_name,
                    passed=data.passed,
                    blocking=bool(data.blocking),
                    severity=data.severity.value,
                    step_key=event.step_key,
                    metadata=_plain(data.metadata),
                )
            )
        else:
            error = data.error
            if error is not None and error.cls_name == USER_CODE_WRAPPER and error.cause:
                error = error.cause
            user_failure = data.user_failure_data
            steps.append(
                StepFailure(
                    step_key=event.step_key or "(unknown step)",
                    error_class=error.cls_name if error else "(no error recorded)",
                    error_summary=_summary(error.message) if error else "",
                    metadata=_plain(user_failure.metadata) if user_failure else {},
                )
            )
    run_record = instance.get_run_record_by_id(run.run_id)
    ended = run_record.end_time if run_record and run_record.end_time else None
    run_error = getattr(failure_event.event_specific_data, "error", None)
    return FailedRun(
        job_name=run.job_name,
        run_id=run.run_id,
        failed_at=datetime.fromtimestamp(ended, UTC) if ended else datetime.now(UTC),
        failure_message=failure_event.message or f"run {run.run_id} failed",
        failure_summary=_summary(run_error.message) if run_error else "",
        step_failures=tuple(steps),
        check_evaluations=tuple(checks),
    )


def _summary(message: str) -> str:
    """``dagster._core.definitions.events.Failure: text`` → ``Failure: text``."""
    head, sep, rest = message.strip().partition(": ")
    if sep and "." in head and " " not in head:
        return f"{head.rsplit('.', 1)[-1]}: {rest}"
    return message.strip()


def _plain(metadata: dict[str, object]) -> dict[str, object]:
    """Metadata values as JSON-ready Python values (``MetadataValue.value``)."""
    plain = {}
    for key, value in metadata.items():
        raw = getattr(value, "value", value)
        plain[key] = raw if isinstance(raw, str | int | float | bool | type(None)) else str(raw)
    return plain
