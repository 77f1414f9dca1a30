"""The daemon tests' starting world, built once per test run; each test copies it.

Both halves of the daemon scenario (daemon_helpers.py) start from the same world: the
demo's 260 days for 500 customers (seed 7), and a production churn model from the
one-button job, its run recorded in the Dagster home.  Building it is the demo generator
and a whole retraining, over 100 CPU seconds, so it is built once: the first test that
asks builds it in a folder every xdist worker of the run shares, under a file lock, and
the others wait on the lock.  A test copies the world into its own tmp_path and starts
its own servers and daemon over the copy; the settings (data folder, Dagster home, URLs)
come from that test's environment, and the warehouse's file manifest, the Optuna study
and the model registry's files are found relative to the data folder.

One thing in a copy still names the built world: a training set's manifest (the
registry's training_set.json, and the IO manager's pickled training set) holds the
export's absolute path, and the drift check reads production's reference rows from it.
So the world is built where it stays for the whole run, never moved, and those reads
get the very bytes the copy has (load_training_set checks the fingerprint).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from churn_demo.api_server import DemoApiServer
from churn_demo.generator import generate
from daemon_helpers import BIN, REPO, Receiver, closing_receiver, daemon_env
from filelock import FileLock

from training_pipeline.settings import Settings

WORLD = "daemon-world"


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
