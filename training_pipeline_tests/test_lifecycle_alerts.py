"""Lifecycle alerts (drift, retraining, promotion, rollback, pins, stale data): once per
episode, with the model, versions and metrics; and the training-data freshness promise."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from churn_model import churn_spec
from fitted_models import fitted, register

from training_pipeline.alert_webhook import slack_payload
from training_pipeline.alerts import AlertDestination, deliver_once
from training_pipeline.assets.model_data_age import check_data_age
from training_pipeline.assets.model_names import DeclaredModel
from training_pipeline.lifecycle_alerts import (
    alias_change_alert,
    drift_alert,
    drift_alert_due,
    drift_episodes_after,
    stale_alert,
)
from training_pipeline.ml.data_age import data_age
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.resources import build_resources

DAY = 86400.0
RUN = ("churn__retrain", "run-1")


def logged(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def drift_ticks(severities: list[str], productions: list[str]) -> list:
    """The drift alerts consecutive checks raise, as the feature drift check raises them."""
    episodes: dict[str, str] = {}
    alerts = []
    for minute, (severity, production) in enumerate(zip(severities, productions, strict=True)):
        after = drift_episodes_after(episodes, severity, f"2026-12-01T10:{minute:02d}")
        due = drift_alert_due(episodes, after)
        if due is not None:
            alerts.append(drift_alert("churn", due, production, 0.5, RUN, episode=after[due]))
        episodes = after
    return alerts


def alerted(alerts: list) -> list[tuple[str, str, str]]:
    return [
        (a.details["severity"], a.details["production"], a.details["episode_began"][-2:])
        for a in alerts
    ]


def test_persisting_drift_is_alerted_once_per_severity_even_across_a_retrained_model():
    # Regression: the retrained v2 took over while drift persisted, and the next check
    # alerted ERROR a second time for the same episode.
    ticks = drift_ticks(["warn", "warn", "error", "error", "error"], ["v1"] * 4 + ["v2"])

    assert alerted(ticks) == [("WARN", "v1", "00"), ("ERROR", "v1", "02")]


def test_drift_that_ends_and_returns_is_a_new_episode_alerted_again():
    ticks = drift_ticks(["error", "warn", "error", "none", "warn"], ["v1"] * 5)

    # Easing to WARN alerts nothing; ERROR after it begins a new ERROR episode; the check
    # that passed ends every episode.
    assert alerted(ticks) == [("ERROR", "v1", "00"), ("ERROR", "v1", "02"), ("WARN", "v1", "04")]


def test_an_episode_raised_by_two_checks_at_once_is_delivered_once(tmp_path):
    destination = AlertDestination(tmp_path / "alerts.jsonl")
    (first,) = drift_ticks(["error"], ["v1"])
    (same_episode,) = drift_ticks(["error"], ["v1"])

    outcomes = [deliver_once(alert, destination) for alert in (first, same_episode)]

    assert [outcome is not None for outcome in outcomes] == [True, False]
    (logged_alert,) = logged(destination.log)
    assert logged_alert["model"] == "churn" and logged_alert["run_id"] == "run-1"
    assert logged_alert["dedup_key"] == "churn:drift:ERROR:2026-12-01T10:00"


def test_a_severity_the_drift_check_does_not_know_is_refused():
    with pytest.raises(ValueError, match="'critical'"):
        drift_episodes_after({}, "critical", "2026-12-01T10:00")


def test_an_alert_without_an_episode_cannot_be_deduplicated(tmp_path):
    alert = drift_alert("churn", "warn", "v1", 0.2, RUN, episode="2026-12-01T10:00")
    anonymous = type(alert)(**{**alert.__dict__, "dedup_key": None})

    with pytest.raises(ValueError, match="dedup_key"):
        deliver_once(anonymous, AlertDestination(tmp_path / "alerts.jsonl"))


def test_an_operator_alert_names_the_model_versions_metrics_and_links_the_asset(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    first, second = (
        register(registry, fitted(), data_fingerprint=f"sha256:{n}").version for n in (1, 2)
    )
    registry.promote(first)
    registry.promote(second)
    change = registry.rollback(reason="bad scores", actor="alice")

    alert = alias_change_alert("churn", change, registry.get(first).metrics)
    payload = json.dumps(slack_payload(alert, "http://ui"))

    assert alert.kind == "operator_rollback" and alert.run_id == ""
    assert alert.details["production"] == first and alert.details["production_before"] == second
    assert alert.details["roc_auc"] == 0.8123
    assert "http://ui/assets/churn/production" in payload and "alice" in payload
    assert "Model churn: production rolled back" in payload


def test_data_age_is_measured_on_the_datas_own_clock():
    age = data_age("2026-03-01", "2026-04-20", limit_s=45 * DAY)

    assert age.age_days == 50 and not age.kept
    assert data_age("2026-03-01", "2026-04-10", limit_s=45 * DAY).kept
    assert data_age("2026-03-01", "2030-01-01", limit_s=None).kept


def test_a_date_that_is_not_one_is_named():
    with pytest.raises(ValueError, match="'soon'"):
        data_age("soon", "2026-04-20", limit_s=DAY)


def test_the_stale_alert_says_how_old_and_what_was_promised():
    alert = stale_alert("churn", "v1", "2026-03-01", 50.0, 45.0)

    assert "50.0 days" in alert.message and "at most 45 days" in alert.message
    assert alert.dedup_key == "churn:stale:v1"


@pytest.fixture
def churn_with_production(settings):
    """The churn model with a production version trained through 2026-03-01."""
    spec = churn_spec()
    model = DeclaredModel(spec, dg.AssetKey(["features", "customer_snapshots"]))
    resources = build_resources(settings)
    registry = model.registry(resources["model_store"])
    manifest = {
        **dict.fromkeys(("path", "first_snapshot"), ""),
        "fingerprint": "sha256:1",
        "rows": 1,
        "snapshots": 1,
        "last_snapshot": "2026-03-01",
        "label_mean": 0.5,
        "batches": [],
    }
    version = register(
        registry, fitted(), extra_files={"training_set.json": json.dumps(manifest).encode()}
    ).version
    registry.promote(version)
    return model, resources, version


def features_through(resources, newest: str) -> None:
    with resources["warehouse"].connect() as con:
        con.execute("create schema if not exists features").fetchall()
        con.execute(
            "create or replace table features.customer_snapshots as "
            f"select date '{newest}' as snapshot_date"
        ).fetchall()


@pytest.mark.parametrize(("newest", "kept"), [("2026-04-10", True), ("2026-04-20", False)])
def test_the_freshness_check_fails_and_alerts_when_production_data_is_older_than_promised(
    settings, churn_with_production, newest, kept
):
    model, resources, version = churn_with_production
    features_through(resources, newest)
    assert model.spec.freshness.max_training_data_age == "45d"

    result = check_data_age(
        dg.build_asset_check_context(),
        model,
        resources["warehouse"],
        resources["model_store"],
        resources["alerts"],
    )

    assert result.passed is kept
    assert result.metadata["trained_through"].value == "2026-03-01"
    alerts = logged(Path(resources["alerts"].log_path))
    assert [a["kind"] for a in alerts] == ([] if kept else ["training_data_stale"])
    if not kept:
        assert alerts[0]["details"]["production"] == version
        assert datetime.fromisoformat(alerts[0]["timestamp"]).tzinfo == UTC
