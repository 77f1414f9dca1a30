"""Why a run failed, as alerts: the rules, applied to plain facts read from its events.

No Dagster here: ``training_pipeline.automation.alerts`` reads the run's step failures and
asset check evaluations out of the event log into these dataclasses, so the rules are
tested on hand-made runs as well as on real ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from training_pipeline.alerts import Alert, clip

# Dagster fails the step that emitted a failed blocking check with this error class.
CHECK_FAILED_ERROR = "DagsterAssetCheckFailedError"
# `production_model` raises a Failure whose metadata carries this key.
ROLLBACK_MARKER = "rolled_back"


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
