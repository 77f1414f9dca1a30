"""The real Dagster daemon on a temporary home, for the daemon tests.

Two modules use it (test_automation_end_to_end.py, test_automation_pinned.py), so that
the scenario of "Watch it happen" runs on two xdist workers at once instead of being
one 20-minute test that bounds the suite.  Every wait has a deadline, and waits follow
the daemon's own clock (its runs and sensor ticks), never a fixed sleep.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
from dagster._core.scheduler.instigation import InstigatorType, TickStatus
from dagster._grpc.client import DagsterGrpcClient

from training_pipeline.settings import Settings

REPO = Path(__file__).parents[1]
BIN = Path(sys.executable).parent
# The code location's name under `dagster-daemon run -w workspace.yaml`, kept for the
# code server the daemon is given instead (the sensors' state is keyed by it).
LOCATION = "training_pipeline.definitions"
ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
# Drifted data lands a week at a time: the churn features' weekly grid is fixed (every
# Friday), so a week always adds a snapshot whose label has become observable, while a
# single day does so only when it reaches a Friday's label horizon; a retraining on an
# unchanged training set trains nothing ("unchanged since ...", by design).
DRIFTED_WEEK = 7
# The sensors that launch runs; the run-failure alert sensor only reports on them.
LAUNCHERS = ("new_data_sensor", "downstream_automation", "churn__drift_retraining")
# What the daemon is given besides its home, data and URLs: everything it would wait
# for or compute beyond what the scenario proves is shortened here.
DAEMON_SETTINGS = {
    # The daemon's sensor and automation loops come round no more often than every 5 s,
    # so an interval under 5 s looks on every loop; the automation and sensor ticks were
    # most of the daemon's CPU (py-spy).  10 s looks on every other loop, a few seconds
    # more between a day landing and its runs.
    "TRAINING_PIPELINE_SENSOR_INTERVAL_S": "10",
    # A day lands at once, so its files and records make one run, not two; the
    # settle time has its own tests.
    "TRAINING_PIPELINE_LANDING_SETTLE_S": "0",
    # Every training here (the bootstrap and each drift retraining) only has to produce a
    # model the gate passes; tuning quality has its own tests (test_tuning*.py).
    "TRAINING_PIPELINE_TUNING_TRIALS": "2",
    "TRAINING_PIPELINE_TUNING_SECONDS": "15",
    "TRAINING_PIPELINE_GATE_MAX_AUC_DROP": "0.05",
    "TRAINING_PIPELINE_NIGHTLY_RETRAIN": "off",
    "TRAINING_PIPELINE_DRIFT_COOLDOWN": "0s",
}


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

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/hook"


def wait_for(what: str, condition: Callable[[], bool], timeout_s: float) -> None:
    """Polls ``condition`` (it reads the instance or the registry) every 2 s: the daemon
    moves on the sensors' 10 s, so looking more often only costs this process CPU."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


@contextmanager
def closing_receiver(receiver: Receiver) -> Iterator[Receiver]:
    try:
        yield receiver
    finally:
        receiver.shutdown()


@contextmanager
def code_server(tmp_path: Path, env: dict[str, str]) -> Iterator[Path]:
    """One code server for the whole test, as `dagster dev` (`make ui`) gives its daemon;
    yields a workspace file that points at it.

    Given `workspace.yaml` itself, the daemon starts a code server of its own and
    replaces it with a new process every 60 s (its workspace refresh), each loading the
    definitions again: 15 or 16 code servers in a half under load, over a quarter of its CPU
    (README, Tests).  Against a running server a refresh only fetches its snapshot.
    Runs are launched from this server, so they are stopped with its process group.
    """
    # A Unix socket path must stay under 108 bytes; pytest's tmp_path can be longer.
    socket_dir = Path(tempfile.mkdtemp(prefix="tp-code-"))
    try:
        yield from _code_server(tmp_path, env, socket_dir / "grpc.sock")
    finally:
        shutil.rmtree(socket_dir)


def _code_server(tmp_path: Path, env: dict[str, str], socket: Path) -> Iterator[Path]:
    workspace = tmp_path / "workspace.yaml"
    grpc = {"socket": str(socket), "location_name": LOCATION}
    workspace.write_text(json.dumps({"load_from": [{"grpc_server": grpc}]}))
    with (
        (tmp_path / "code_server.log").open("wb") as log,
        stopped_with_group(
            subprocess.Popen(
                [str(BIN / "dagster"), "api", "grpc", "-m", LOCATION, "-d", str(REPO)]
                + ["--socket", str(socket), "--location-name", LOCATION],
                cwd=REPO,
                # Stopped, the server waits for its open calls up to this grace period
                # (Dagster's default: 60 s, past stopped_with_group's 30 s); the test is
                # over by then and nothing it checks is still being answered.
                env=env | {"DAGSTER_GRPC_SHUTDOWN_GRACE_PERIOD": "2"},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        ) as server,
    ):

        def serving() -> bool:
            if server.poll() is not None:
                raise AssertionError(f"the code server exited: {tmp_path / 'code_server.log'}")
            client = DagsterGrpcClient(socket=str(socket))
            return socket.exists() and client.health_check_query() == "SERVING"

        wait_for("the code server", serving, 600)
        try:
            yield workspace
        finally:
            # Stopped through its API, as Dagster stops the code servers it starts: it
            # maps SIGTERM to whatever SIGINT does, so one started under a process that
            # ignores SIGINT (a shell's background job, nohup) ignores SIGTERM as well and
            # sat out stopped_with_group's 30 s until SIGKILL.  It exits once no run it
            # launched is executing; stopped_with_group still stops any run left over.
            if server.poll() is None:
                DagsterGrpcClient(socket=str(socket)).shutdown_server()


@contextmanager
def daemon(tmp_path: Path, env: dict[str, str], workspace: Path) -> Iterator[None]:
    with (
        (tmp_path / "daemon.log").open("wb") as log,
        stopped_with_group(
            subprocess.Popen(
                [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        ),
    ):
        yield


@contextmanager
def stopped_with_group(process: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """``process`` runs in its own session: at the end it and every process it started
    are stopped."""
    try:
        yield process
    finally:
        with suppress(ProcessLookupError):  # none of the group is left
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def sensor_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return instance.get_runs(filters=dg.RunsFilter(tags={"dagster/sensor_name": "new_data_sensor"}))


def drift_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    tags = {"dagster/sensor_name": "churn__drift_retraining"}
    return instance.get_runs(filters=dg.RunsFilter(tags=tags))


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


def settle_first_look(instance: dg.DagsterInstance) -> None:
    """The sensor's first look requests only what the bootstrap run did not ingest (the
    weather example's file); let that finish so that what follows is caused by the new
    days alone."""
    wait_for("the first sensor run to finish", lambda: quiet(instance), 600)
    orders = dg.AssetKey(["raw", "orders"])
    assert not [r.run_id for r in sensor_runs(instance) if orders in (r.asset_selection or ())]


def cli(pipeline: dict, *args: str) -> str:
    # The deadline is for a hung command: on a 2-core machine at a load average of 20, a
    # `pin` that had printed its result was still running at 120 s and was killed.
    done = subprocess.run(
        [str(BIN / "training-pipeline"), *args, "--model", "churn"],
        env=pipeline["env"],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return done.stdout


def alert_kinds(settings: Settings) -> list[str]:
    log = settings.data_dir / "alerts" / "alerts.jsonl"
    alerts = [json.loads(line) for line in log.read_text().splitlines()]
    return [
        f"{a['kind']} {a['details']['severity']}" if a["kind"] == "drift_detected" else a["kind"]
        for a in alerts
    ]
