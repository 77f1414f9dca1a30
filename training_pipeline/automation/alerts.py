"""The run-failure sensor: every failed run in this code location becomes an alert.

Thin on purpose: it reads the failed run's step failures and asset check evaluations out
of the event log and hands them to ``deliver_failed_run`` (``classify_failed_run``
decides what to say; the JSONL log always, the webhook when configured).  The CLI runner
calls the same ``alert_failed_run`` for the runs it executes without the daemon, and a
run already in the alert log is never alerted twice.

A webhook that does not accept an alert fails the tick, after every alert of the run has
been logged.  Dagster still advances a run-status sensor's cursor past a run whose
evaluation raised (it would rather skip than repeat side effects), so nothing is posted
twice, while the tick turns red in the UI with the (masked) reason instead of the
failure being visible only in a log line nobody reads.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from training_pipeline.alerts import Alert, AlertDeliveryError, DeliveryOutcome
from training_pipeline.automation.failures import (
    CheckEvaluation,
    FailedRun,
    RecentFailure,
    StepFailure,
    deliver_failed_run,
)
from training_pipeline.settings import Settings

# Dagster wraps an exception raised by user code in this error; the cause is the news.
USER_CODE_WRAPPER = "DagsterExecutionStepExecutionError"


webhook_health = RecentFailure()  # lives as long as the code server process


def build_run_failure_sensor(settings: Settings) -> dg.RunStatusSensorDefinition:
    """The run-failure sensor, alerting where ``settings`` say (log, webhook, UI links)."""

    @dg.run_failure_sensor(
        name="alert_on_run_failure",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Every failed run of this code location: a line in "
        "<data>/alerts/alerts.jsonl and, when TRAINING_PIPELINE_ALERT_WEBHOOK_URL is set, a "
        "Slack-style webhook post. Failed blocking checks and automatic rollbacks get alerts "
        "of their own kind.",
    )
    def alert_on_run_failure(context: dg.RunFailureSensorContext) -> None:
        run = context.dagster_run
        delivered = alert_failed_run(
            context.instance, run, context.failure_event, settings, webhook_health
        )
        if not delivered:
            context.log.info(f"run {run.run_id} was already alerted (by the CLI that ran it)")
        undelivered = []
        for alert, outcome in delivered:
            context.log.info(f"{alert.kind} alert for run {alert.run_id}: {outcome.status}")
            if outcome.error:
                context.log.warning(outcome.error)
                undelivered.append(outcome.error)
        if undelivered:
            raise AlertDeliveryError("; ".join(undelivered))

    return alert_on_run_failure


def alert_failed_run(
    instance: dg.DagsterInstance,
    run: dg.DagsterRun,
    failure_event: dg.DagsterEvent,
    settings: Settings,
    health: RecentFailure | None = None,
) -> list[tuple[Alert, DeliveryOutcome]]:
    """Alert a failed run from its events, unless it was alerted already (see
    ``deliver_failed_run``); what the sensor and the CLI runner both call."""
    failed = failed_run_from_events(instance, run, failure_event)
    return deliver_failed_run(failed, settings, health or RecentFailure())


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
