"""The pipeline running itself under the real Dagster daemon, on a temporary home.

A normal batch refreshes ingestion, features and scores without retraining; a drifted
batch trips the drift check, which retrains, gates and promotes a new model; a run that
fails sends an alert to a local webhook receiver.  Every wait has a deadline, and waits
follow the daemon's own clock (its runs and sensor ticks), never a fixed sleep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest
from churn_demo.api_server import DemoApiServer
from churn_demo.generator import generate
from dagster._core.scheduler.instigation import InstigatorType, TickStatus

from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
REPO = Path(__file__).parents[1]
BIN = Path(sys.executable).parent
ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
# The sensors that launch runs; the run-failure alert sensor only reports on them.
LAUNCHERS = ("new_data_sensor", "downstream_automation", "churn__drift_retraining")


class Receiver(ThreadingHTTPServer):
    """A local webhook that records every JSON body posted to it."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler) -> None:  # noqa: N802, N805
                length = int(handler.headers.get("Content-Length", 0))
                self.bodies.append(json.loads(handler.rfile.read(length)))
                handler.send_response(200)
                handler.end_headers()

            def log_message(handler, *args) -> None:  # noqa: N805
                pass

        super().__init__(("127.0.0.1", 0), Handler)


def wait_for(what: str, condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    data, home = tmp_path / "data", tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster_home" / "dagster.yaml").read_text())
    monkeypatch.setenv("TRAINING_PIPELINE_DATA_DIR", str(data))
    settings = Settings.from_env()
    generate(settings, days=260, customers=500, seed=7)
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    with DemoApiServer(settings, port=0) as api:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINING_PIPELINE_")}
        env |= {
            "DAGSTER_HOME": str(home),
            "TRAINING_PIPELINE_DATA_DIR": str(data),
            "TRAINING_PIPELINE_API_URL": api.url,
            "TRAINING_PIPELINE_ALERT_WEBHOOK_URL": f"http://127.0.0.1:{receiver.server_port}/hook",
            # The daemon's loop ticks every 5 s at most; with 1 s every loop looks.
            "TRAINING_PIPELINE_SENSOR_INTERVAL_S": "1",
            # A day lands at once, so its files and records make one run, not two; the
            # settle time has its own tests.
            "TRAINING_PIPELINE_LANDING_SETTLE_S": "0",
            "TRAINING_PIPELINE_TUNING_TRIALS": "4",
            "TRAINING_PIPELINE_TUNING_SECONDS": "30",
            "TRAINING_PIPELINE_GATE_MAX_AUC_DROP": "0.05",
            "TRAINING_PIPELINE_NIGHTLY_RETRAIN": "off",
            "TRAINING_PIPELINE_DRIFT_COOLDOWN": "0s",
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        }
        # The starting point: a production model from the one-button job.
        subprocess.run(
            [str(BIN / "training-pipeline"), "retrain", "--model", "churn"],
            env=env,
            check=True,
            cwd=REPO,
            capture_output=True,
            timeout=600,
        )
        daemon_log = (tmp_path / "daemon.log").open("wb")
        daemon = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
            cwd=REPO,
            env=env,
            stdout=daemon_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            with dg.DagsterInstance.from_config(str(home)) as instance:
                yield {
                    "settings": settings,
                    "instance": instance,
                    "env": env,
                    "receiver": receiver,
                    "api": api,
                }
        finally:
            # The daemon runs in its own session: stop it and every run it launched.
            os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
                daemon.wait(timeout=30)
            daemon_log.close()
            receiver.shutdown()


def sensor_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return instance.get_runs(filters=dg.RunsFilter(tags={"dagster/sensor_name": "new_data_sensor"}))


def active(instance: dg.DagsterInstance) -> bool:
    return bool(instance.get_runs(filters=dg.RunsFilter(statuses=ACTIVE), limit=1))


def looked_since(instance: dg.DagsterInstance, since: float) -> bool:
    """Each sensor that launches runs has finished a tick that began after ``since``."""
    looked = set()
    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.instigator_name not in LAUNCHERS:
            continue
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
        if ticks and ticks[0].timestamp > since and ticks[0].status != TickStatus.STARTED:
            looked.add(state.instigator_name)
    return looked == set(LAUNCHERS)


def quiet(instance: dg.DagsterInstance) -> bool:
    """No run is active, and none has started after every sensor had looked again.

    Between one run's end and the run that automation launches after it there is a
    moment with nothing active; a full tick of each sensor after that moment tells that
    from the end (a tick creates its run before it finishes).
    """
    if active(instance):
        return False
    since = time.time()
    wait_for("every sensor to look again", lambda: looked_since(instance, since), 120)
    return not active(instance)


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

    # The sensor's first look requests only what the bootstrap run did not ingest (the
    # weather example's file); let that finish so that what follows is caused by the new
    # days alone.
    wait_for("the first sensor run to finish", lambda: quiet(instance), 600)
    orders = dg.AssetKey(["raw", "orders"])
    assert not [r.run_id for r in sensor_runs(instance) if orders in (r.asset_selection or ())]

    # A normal day: ingestion, features and scores refresh; the model stays.
    start = time.time()
    generate(settings, days=1)
    settle(instance, scores, start, 600)
    assert materialized_since(instance, dg.AssetKey(["raw", "orders"]), start)
    assert registry.production().version == first_model
    assert len(registry.versions()) == 1

    # A drifted day: the drift check fails at ERROR, a new model is trained and gated.
    start = time.time()
    generate(settings, days=1, drift=True)
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
    operate_the_model_lifecycle(pipeline, first_model, production["version"])

    # A failing run: the ticket API goes away and the one-button job is launched.
    pipeline["api"].stop()
    subprocess.run(
        [
            str(BIN / "dagster"),
            "job",
            "launch",
            "-w",
            "workspace.yaml",
            "-j",
            "retrain_on_latest_data",
        ],
        cwd=REPO,
        env=pipeline["env"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    receiver = pipeline["receiver"]
    wait_for("an alert at the webhook receiver", lambda: receiver.bodies, 600)
    assert "retrain_on_latest_data" in json.dumps(receiver.bodies[0])
    log = settings.data_dir / "alerts" / "alerts.jsonl"
    assert any(
        json.loads(line)["job_name"] == "retrain_on_latest_data"
        for line in log.read_text().splitlines()
    )


def cli(pipeline: dict, *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "training-pipeline"), *args, "--model", "churn"],
        env=pipeline["env"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout


def alert_kinds(settings: Settings) -> list[str]:
    log = settings.data_dir / "alerts" / "alerts.jsonl"
    alerts = [json.loads(line) for line in log.read_text().splitlines()]
    return [
        f"{a['kind']} {a['details']['severity']}" if a["kind"] == "drift_detected" else a["kind"]
        for a in alerts
    ]


def drift_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    tags = {"dagster/sensor_name": "churn__drift_retraining"}
    return instance.get_runs(filters=dg.RunsFilter(tags=tags))


def operate_the_model_lifecycle(pipeline: dict, first_model: str, retrained: str) -> None:
    """Rollback that sticks: the operator rolls back and pins, persisting drift retrains
    but promotes nothing, and after unpinning new data is promoted as usual."""
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

    # Drift persists on a new day: retrained (new data), gated, but not promoted.
    versions_before = len(registry.versions())
    generate(settings, days=1, drift=True)
    wait_for("a second drift retraining", lambda: len(drift_runs(instance)) == 2, 900)
    wait_for("the daemon's runs to finish", lambda: quiet(instance), 900)
    assert registry.production().version == first_model
    newest = registry.versions()[0]
    assert len(registry.versions()) == versions_before + 1 and newest.gate is not None
    blocked = "promotion_blocked" if newest.gate["passed"] else "blocking_check_failed"
    assert blocked in alert_kinds(settings)

    # Unpinned, the next drifted day's model is promoted as usual.
    cli(pipeline, "unpin", "--reason", "complaints resolved")
    generate(settings, days=1, drift=True)
    wait_for(
        "a new model in production after unpinning",
        lambda: registry.production().version not in (first_model, retrained, newest.version),
        900,
    )
    wait_for("the daemon's runs to finish", lambda: quiet(instance), 600)
    assert {"operator_rollback", "production_pinned", "production_unpinned"} <= set(
        alert_kinds(settings)
    )
