"""The pipeline running itself under the real Dagster daemon, on a temporary home.

A normal batch refreshes ingestion, features and scores without retraining; a drifted
batch trips the drift check, which retrains, gates and promotes a new model; the
operator rolls back and pins; a run that fails sends an alert to a local webhook
receiver.  What a pinned production does with the next drifted days is
test_automation_pinned.py's, on a world of its own, so the two run side by side.
"""

from __future__ import annotations

import json
import subprocess
import time

import dagster as dg
import pytest
from churn_demo.generator import generate
from daemon_helpers import (
    BIN,
    DRIFTED_WEEK,
    REPO,
    alert_kinds,
    cli,
    drift_runs,
    quiet,
    settle_first_look,
    wait_for,
)

from training_pipeline.ml.registry import ModelRegistry

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def materialized_since(instance: dg.DagsterInstance, key: dg.AssetKey, since: float) -> bool:
    event = instance.get_latest_materialization_event(key)
    return event is not None and event.timestamp > since


def settle(instance: dg.DagsterInstance, key: dg.AssetKey, since: float, timeout_s: float):
    wait_for(
        f"{key.to_user_string()} to refresh",
        lambda: materialized_since(instance, key, since),
        timeout_s,
    )
    wait_for("the daemon's runs to finish", lambda: quiet(instance), timeout_s)


@pytest.mark.timeout(2400)
def test_the_pipeline_refreshes_on_new_data_retrains_on_drift_and_alerts_on_failure(pipeline):
    instance, settings = pipeline["instance"], pipeline["settings"]
    registry = ModelRegistry.for_model(settings.models_dir, "churn")
    first_model = registry.production().version
    scores = dg.AssetKey(["churn", "scores"])
    settle_first_look(instance)

    # A normal day: ingestion, features and scores refresh; the model stays.
    start = time.time()
    generate(settings, days=1)
    settle(instance, scores, start, 600)
    assert materialized_since(instance, dg.AssetKey(["raw", "orders"]), start)
    assert registry.production().version == first_model
    assert len(registry.versions()) == 1

    # A drifted week: the drift check fails at ERROR, a new model is trained and gated.
    generate(settings, days=DRIFTED_WEEK, drift=True)
    wait_for(
        "a retrained model in production", lambda: registry.production().version != first_model, 900
    )
    status = subprocess.run(
        [str(BIN / "training-pipeline"), "status", "--model", "churn", "--json"],
        env=pipeline["env"],
        capture_output=True,
        text=True,
        check=True,
    )
    production = json.loads(status.stdout)["production"]
    assert production["version"] != first_model and production["gate"]["passed"]
    wait_for("the daemon's runs to finish", lambda: quiet(instance), 600)
    roll_back_and_pin(pipeline, first_model, production["version"])

    # A failing run: the ticket API goes away and the one-button job is launched.
    pipeline["api"].stop()
    subprocess.run(
        [
            str(BIN / "dagster"),
            "job",
            "launch",
            "-w",
            str(pipeline["workspace"]),
            "-j",
            "retrain_on_latest_data",
        ],
        cwd=REPO,
        env=pipeline["env"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # The receiver has heard every alert of this daemon's runs (the bootstrap's went to
    # one of its own); the failure's is the one raised for the one-button job.
    receiver = pipeline["receiver"]
    failed = "Run failed: job retrain_on_latest_data,"
    wait_for(
        "the failure alert at the webhook receiver",
        lambda: any(body["text"].startswith(failed) for body in receiver.bodies),
        600,
    )
    log = settings.data_dir / "alerts" / "alerts.jsonl"
    assert any(
        alert["kind"] == "run_failure" and alert["job_name"] == "retrain_on_latest_data"
        for alert in map(json.loads, log.read_text().splitlines())
    )


def roll_back_and_pin(pipeline: dict, first_model: str, retrained: str) -> None:
    """The operator rolls back to the first model and pins it, with a reason."""
    instance, settings = pipeline["instance"], pipeline["settings"]
    registry = ModelRegistry.for_model(settings.models_dir, "churn")
    # One drifted day, one retraining; drift and retraining each alerted once, and two
    # promotions: the first model's and the retrained one's.
    assert len(drift_runs(instance)) == 1
    kinds = alert_kinds(settings)
    expected = {"drift_detected ERROR": 1, "retrain_launched": 1, "model_promoted": 2}
    assert {kind: kinds.count(kind) for kind in expected} == expected, kinds

    cli(pipeline, "rollback", "--reason", "retention team complaints", "--pin")
    assert registry.production().version == first_model
    assert registry.get(retrained).rejected.reason == "retention team complaints"
    observed = instance.fetch_observations(dg.AssetKey(["churn", "production"]), limit=5)
    assert {r.asset_observation.metadata["alias_change"].value for r in observed.records} == {
        "rollback",
        "pin",
    }
    assert {"operator_rollback", "production_pinned"} <= set(alert_kinds(settings))
