"""The daemon tests' `pipeline`: a copy of one starting world, with the daemon over it.

Both halves of the daemon scenario (test_automation_end_to_end.py and
test_automation_pinned.py) start from the same world: the demo's 260 days for 500
customers (seed 7), and a production churn model from the one-button job, its run
recorded in the Dagster home.  Building it is the demo generator and a whole retraining,
over 100 CPU seconds, so it is built once per test run: the first test that asks builds
it in a folder every xdist worker of the run shares, under a file lock, and the others
wait on the lock.  Each test copies it into its own tmp_path and starts its own webhook
receiver, demo API, code server and daemon over the copy (daemon_helpers.py).  The
settings (data folder, Dagster home, URLs) come from that test's environment, and the
warehouse's file manifest, the Optuna study and the model registry are found from the
data folder.

A copy's files are all new to the file system (their ctime is the copy's), while the
new-data sensor, at its first look, counts as taken by the bootstrap run the landed
files whose ctime is older than that run's start.  So the world also keeps what that
first look would have found in the built world (``SENSOR_CURSOR``), and each test sets
it as the sensor's cursor before its daemon starts: a file the cursor knows is hashed
again and, unchanged, is not new.  It holds the orders folder's entry only: the API and
CRM sources start from their batches' recorded cursors, which a copy keeps, and the
weather example's file, which the bootstrap run did not take, is still requested.

A copy's training-set manifests (the registry's training_set.json, the IO manager's
pickled training set) still name the exports in the built world by absolute path; no
run of a test reads those exports: the drift checks read production's rows from the registry's
own copy (ml/training_rows.py), and a retraining exports its own training set before its
candidate reads one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from churn_demo.api_server import DemoApiServer
from churn_demo.generator import generate
from daemon_helpers import (
    BIN,
    DAEMON_SETTINGS,
    REPO,
    Receiver,
    closing_receiver,
    code_server,
    daemon,
)
from filelock import FileLock

from training_pipeline.automation.sensors import SensorCursor
from training_pipeline.ingestion.landing_folder import TAKE_AT_ONCE
from training_pipeline.ingestion.landing_scan import taken_before_cursor
from training_pipeline.settings import Settings

WORLD = "daemon-world"
SENSOR_CURSOR = "new_data_sensor.cursor"
# The declared file source the bootstrap run ingested; the names are the sensor's.
ORDERS, ORDERS_ASSET = "orders", dg.AssetKey(["raw", "orders"])


@pytest.fixture(scope="session")
def daemon_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built world: ``data`` (the data folder) and ``dagster_home``.

    Under xdist each worker's basetemp is a folder of the run's own (popen-gwN), so the
    run's folder above it is the one they share; without xdist the basetemp is the run's.
    Never a folder a later run would find: a world is only as current as the code that
    built it.
    """
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    world = shared / WORLD
    built = world / "built"  # written last: a world without it is a build that failed
    with FileLock(shared / f"{WORLD}.lock"):
        if not built.exists():
            if world.exists():
                shutil.rmtree(world)
            build(world, shared / f"{WORLD}.log")
            built.touch()
    return world


def build(world: Path, log: Path) -> None:
    data, home = world / "data", world / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text((REPO / "dagster_home" / "dagster.yaml").read_text())
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("TRAINING_PIPELINE_DATA_DIR", str(data))
        settings = Settings.from_env()
    generate(settings, days=260, customers=500, seed=7)
    # The bootstrap's own alerts (its model's promotion) go to a receiver of its own:
    # a test's receiver hears only what happens under that test's daemon.
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    with closing_receiver(receiver), DemoApiServer(settings, port=0) as api, log.open("wb") as out:
        # The starting point: a production model from the one-button job.
        done = subprocess.run(
            [str(BIN / "training-pipeline"), "retrain", "--model", "churn"],
            env=daemon_env(home, data, api.url, receiver.url),
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=600,
        )
    if done.returncode != 0:
        raise AssertionError(f"the bootstrap retraining exited {done.returncode}: {log}")
    (world / SENSOR_CURSOR).write_text(first_look_cursor(home, data))


def first_look_cursor(home: Path, data: Path) -> str:
    """The new-data sensor's first entry for the orders folder (probes.first_entry: the
    files its last batch took), in the new-data sensor's cursor."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        taken = instance.get_latest_materialization_event(ORDERS_ASSET)
        assert taken is not None, "the bootstrap run ingested no orders"
        run = instance.get_run_record_by_id(taken.run_id)
        assert run is not None and run.start_time is not None
        started = run.start_time
    entry = taken_before_cursor(data / "landing" / ORDERS, TAKE_AT_ONCE, started)
    return SensorCursor({ORDERS: entry}).dump()


def set_sensor_cursor(workspace: Path, env: dict[str, str], cursor: str) -> None:
    """Started after: `cursor --set` stores a sensor that has no state yet (one running
    as declared in code, before a daemon looked at it) as stopped; `start` keeps the
    cursor."""
    for args in (["cursor", "--set", cursor], ["start"]):
        subprocess.run(
            [str(BIN / "dagster"), "sensor", *args, "new_data_sensor", "-w", str(workspace)],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, daemon_world: Path) -> Iterator[dict]:
    """A copy of the built world, and the daemon running over it (conftest.py lists this
    module among its plugins)."""
    data, home = tmp_path / "data", tmp_path / "dagster_home"
    shutil.copytree(daemon_world / "data", data)
    shutil.copytree(daemon_world / "dagster_home", home)
    monkeypatch.setenv("TRAINING_PIPELINE_DATA_DIR", str(data))
    settings = Settings.from_env()
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    with closing_receiver(receiver), DemoApiServer(settings, port=0) as api:
        env = daemon_env(home, data, api.url, receiver.url)
        with code_server(tmp_path, env) as workspace:
            set_sensor_cursor(workspace, env, (daemon_world / SENSOR_CURSOR).read_text())
            with (
                daemon(tmp_path, env, workspace),
                dg.DagsterInstance.from_config(str(home)) as instance,
            ):
                yield {
                    "settings": settings,
                    "instance": instance,
                    "env": env,
                    "workspace": workspace,
                    "receiver": receiver,
                    "api": api,
                }


def daemon_env(home: Path, data: Path, api_url: str, webhook_url: str) -> dict[str, str]:
    """The environment of the daemon, its code server and every command a test runs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINING_PIPELINE_")}
    env |= DAEMON_SETTINGS | {
        "DAGSTER_HOME": str(home),
        "TRAINING_PIPELINE_DATA_DIR": str(data),
        "TRAINING_PIPELINE_API_URL": api_url,
        "TRAINING_PIPELINE_ALERT_WEBHOOK_URL": webhook_url,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    return env
