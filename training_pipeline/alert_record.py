"""What an alert says: its kind, the run or model it is about, and the facts behind it.

Two families of alerts share this record.  Failed-run alerts (``automation/failures.py``)
name a job and a run.  Lifecycle alerts (``lifecycle_alerts.py``) name a model and carry
its versions and metrics in ``details``; those raised outside a run (an operator's
rollback) have no run, and link to the model's production asset instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

AlertKind = Literal[
    "run_failure",
    "blocking_check_failed",
    "automatic_rollback",
    "production_failed_verification",
    "rows_rejected",
    "drift_detected",
    "retrain_launched",
    "model_promoted",
    "promotion_blocked",
    "operator_rollback",
    "production_pinned",
    "production_unpinned",
    "training_data_stale",
    "serving_refused_version",
]
TITLES: dict[str, str] = {
    "run_failure": "Run failed",
    "blocking_check_failed": "Blocking check failed",
    "automatic_rollback": "Deployment rolled back automatically",
    # Sent by the step that found it (the run goes on with the model rolled back to).
    "production_failed_verification": "Production model failed verification",
    "rows_rejected": "Rows rejected at ingestion",
    "drift_detected": "Feature drift detected",
    "retrain_launched": "Retraining launched",
    "model_promoted": "New model in production",
    "promotion_blocked": "Candidate passed the gate but was not promoted",
    "operator_rollback": "Production rolled back by an operator",
    "production_pinned": "Production pinned",
    "production_unpinned": "Production unpinned",
    "training_data_stale": "Production model's training data is too old",
    "serving_refused_version": "Server refused a model version; the old one serves",
}
SUMMARY_CHARS = 500


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    job_name: str  # "" for an alert raised outside a run
    run_id: str  # "" for an alert raised outside a run
    message: str
    timestamp: datetime  # when it happened, UTC
    error_summary: str = ""
    asset_key: str | None = None
    check_name: str | None = None
    step_key: str | None = None
    model: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)  # versions, metrics, actor
    # Alerts with the same key are one episode: the log and webhook get the first only.
    dedup_key: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in TITLES:
            raise ValueError(f"unknown alert kind {self.kind!r}; expected one of {list(TITLES)}")
        if self.timestamp.utcoffset() is None:
            raise ValueError("an alert's timestamp must be timezone-aware (UTC)")

    @property
    def link_path(self) -> str:
        """The run's page (or, outside a run, the asset's), relative to the UI's base URL."""
        if self.run_id or not self.asset_key:
            return f"/runs/{self.run_id}"
        return "/assets/" + self.asset_key

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["details"] = dict(self.details)
        record["timestamp"] = self.timestamp.astimezone(UTC).isoformat()
        record["link_path"] = self.link_path
        return record


def clip(text: str, limit: int = SUMMARY_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
