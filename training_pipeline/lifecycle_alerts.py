"""Alerts for a model's lifecycle, not only failed runs, each sent once per episode.

Drift, a retraining launched and its outcome, an operator's rollback, a pin or an unpin,
and training data older than the model's promise each become an ``Alert`` with the
model, the versions and the metrics involved.  Every one carries a ``dedup_key`` naming
its episode, and ``alerts.deliver_once`` lets only the first alert of an episode through:

- drift: one per drift episode and severity (``drift_episodes_after``): drift that
  persists over many days alerts once at WARN and once at ERROR, also when a retrained
  model replaces production meanwhile (retraining is the reaction to the episode, not its
  end); an episode ends with a drift check below its severity, and drift easing from
  ERROR to WARN alerts nothing (``drift_alert_due``);
- a retraining: one per run requested (the sensor's run key);
- a promotion, a blocked promotion: one per candidate version;
- an alias change by an operator: one per change (its time);
- stale training data: one per production version;
- a production version the server refused to serve: one per version.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from training_pipeline.alert_record import Alert, AlertKind
from training_pipeline.ml.registry_store import AliasChange


def _alert(
    kind: AlertKind,
    model: str,
    message: str,
    dedup_key: str,
    details: Mapping[str, Any],
    *,
    run: tuple[str, str] = ("", ""),
    at: datetime | None = None,
) -> Alert:
    job_name, run_id = run
    return Alert(
        kind=kind,
        job_name=job_name,
        run_id=run_id,
        message=message,
        timestamp=at or datetime.now(UTC),
        asset_key=f"{model}/production",
        model=model,
        details={k: v for k, v in details.items() if v is not None},
        dedup_key=f"{model}:{dedup_key}",
    )


def _scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {
        name: round(float(value), 4)
        for name, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


OPERATOR_KINDS: dict[str, AlertKind] = {
    "rollback": "operator_rollback",
    "pin": "production_pinned",
    "unpin": "production_unpinned",
}


def alias_change_alert(model: str, change: AliasChange, metrics: Mapping[str, Any]) -> Alert:
    """An operator's rollback, pin or unpin; ``metrics`` are production's afterwards."""
    kind = OPERATOR_KINDS[change.action]
    before, after = change.before.production, change.after.production
    what = {
        "rollback": f"production rolled back from {before} to {after}",
        "pin": f"production pinned to {after}: automation trains and validates, but does "
        "not promote until it is unpinned",
        "unpin": f"production ({after}) unpinned: automation may promote again",
    }[change.action]
    details = {
        "production": after,
        "production_before": before if before != after else None,
        "previous_production": change.after.previous_production,
        "actor": change.actor,
        "reason": change.reason,
        **_scalars(metrics),
    }
    message = f"Model {model}: {what} by {change.actor} ({change.reason})."
    return _alert(kind, model, message, f"{change.action}:{change.at}", details)


DriftEpisodes = Mapping[str, str]
"""The drift episodes under way: severity ("warn", "error") → when the episode began."""

_AT_LEAST = {"none": (), "warn": ("warn",), "error": ("warn", "error")}


def drift_episodes_after(episodes: DriftEpisodes, severity: str, at: str) -> dict[str, str]:
    """The episodes under way after a drift check at ``severity`` judged at time ``at``.

    Drift at ERROR is also drift at WARN: an episode of a severity lasts while every check
    is at that severity or above, and begins anew after a check below it.
    """
    if severity not in _AT_LEAST:
        raise ValueError(f"drift severity {severity!r} is not one of {sorted(_AT_LEAST)}")
    return {level: episodes.get(level, at) for level in _AT_LEAST[severity]}


def drift_alert_due(before: DriftEpisodes, after: DriftEpisodes) -> str | None:
    """The severity to alert after a drift check: the highest whose episode began with it.

    Drift that eases from ERROR to WARN begins nothing and alerts nothing.
    """
    begun = [level for level in ("error", "warn") if level in after and level not in before]
    return begun[0] if begun else None


def drift_alert(
    model: str,
    severity: str,
    production: str,
    drifted_share: Any,
    run: tuple[str, str],
    *,
    episode: str,
) -> Alert:
    """Feature drift at WARN or ERROR against ``production``'s training data, in the
    drift episode of that severity that began at ``episode``."""
    level = severity.upper()
    message = (
        f"Model {model}: feature drift at {level} against the training data of production "
        f"model {production} (drifted share {drifted_share})."
    )
    details = {
        "severity": level,
        "production": production,
        "drifted_share": drifted_share,
        "episode_began": episode,
    }
    key = f"drift:{level}:{episode}"
    return _alert("drift_detected", model, message, key, details, run=run)


def retrain_alert(model: str, trigger: str, run_key: str, production: str | None) -> Alert:
    message = f"Model {model}: retraining launched ({trigger}); the new model faces the gate."
    details = {"trigger": trigger, "production": production, "run_key": run_key}
    return _alert("retrain_launched", model, message, f"retrain:{run_key}", details)


def promoted_alert(
    model: str,
    version: str,
    previous: str | None,
    metrics: Mapping[str, Any],
    run: tuple[str, str],
) -> Alert:
    message = f"Model {model}: {version} is in production (was {previous or 'none'})."
    details = {"production": version, "production_before": previous, **_scalars(metrics)}
    return _alert("model_promoted", model, message, f"promoted:{version}", details, run=run)


def blocked_alert(
    model: str,
    version: str,
    production: str | None,
    reason: str,
    metrics: Mapping[str, Any],
    run: tuple[str, str],
) -> Alert:
    message = f"Model {model}: {version} was not promoted: {reason}."
    details = {"candidate": version, "production": production, **_scalars(metrics)}
    return _alert("promotion_blocked", model, message, f"blocked:{version}", details, run=run)


def stale_alert(
    model: str, production: str, newest_data: str, age_days: float, limit_days: float
) -> Alert:
    message = (
        f"Model {model}: production model {production} was trained on data up to "
        f"{newest_data}, {age_days:.1f} days ago; the model promises at most "
        f"{limit_days:g} days (freshness.max_training_data_age)."
    )
    details = {
        "production": production,
        "newest_training_data": newest_data,
        "age_days": round(age_days, 2),
        "limit_days": limit_days,
    }
    return _alert("training_data_stale", model, message, f"stale:{production}", details)


def serving_refused_alert(model: str, version: str, reason: str, serving: str | None) -> Alert:
    """The online server would not serve ``version`` (production, or the candidate to
    shadow): it failed verification, loading or its smoke test.  ``serving`` stays."""
    message = (
        f"Model {model}: the server refused version {version} ({reason}); it keeps "
        f"serving {serving or 'nothing'}."
    )
    details = {"version": version, "serving": serving, "reason": reason}
    return _alert("serving_refused_version", model, message, f"serving_refused:{version}", details)
