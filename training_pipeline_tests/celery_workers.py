"""The `cluster` profile's Dagster side for tests: a Dagster home on a throw-away
PostgreSQL database (deploy/cluster/dagster.yaml), and Celery workers (RabbitMQ broker,
Redis results) on a queue of the test's own, started and stopped by the test.

A test that needs the broker or the backend calls ``skip_unless_brokers_reachable``."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from celery_steps import WORKER_NAME_ENV
from postgres_helpers import fresh_database

from training_pipeline.environment import child_environment
from training_pipeline.settings import REPO_ROOT

CLUSTER = REPO_ROOT / "deploy" / "cluster"
TESTS = Path(__file__).parent
BROKER = os.environ.get(
    "TRAINING_PIPELINE_TEST_CELERY_BROKER", "amqp://guest:guest@127.0.0.1:5672//"
)
BACKEND = os.environ.get("TRAINING_PIPELINE_TEST_CELERY_BACKEND", "redis://127.0.0.1:6379/3")


@pytest.fixture
def cluster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A DAGSTER_HOME holding the profile's dagster.yaml, on a throw-away database."""
    with fresh_database("tp_scale_core_dagster") as url:
        home = tmp_path / "dagster_home"
        home.mkdir()
        shutil.copy(CLUSTER / "dagster.yaml", home / "dagster.yaml")
        for name, value in {
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_HOST": url.host or "127.0.0.1",
            "DAGSTER_PG_PORT": str(url.port or 5432),
            "DAGSTER_PG_DB": url.database or "",
            "DAGSTER_PG_USERNAME": url.username or "postgres",
            "DAGSTER_PG_PASSWORD": url.password or "",
        }.items():
            monkeypatch.setenv(name, value)
        yield home


def _unreachable(url: str, default_port: int) -> str | None:
    """None when something listens at ``url``'s host and port, else why not."""
    parts = sa.make_url(url.replace("amqp://", "amqp+x://").replace("redis://", "redis+x://"))
    address = (parts.host or "127.0.0.1", parts.port or default_port)
    try:
        socket.create_connection(address, timeout=2).close()
    except OSError as error:
        return f"{url.split('@')[-1]} not reachable: {error}"
    return None


def skip_unless_brokers_reachable() -> None:
    """Skip the test, naming the service, unless RabbitMQ and Redis both answer."""
    for url, port in ((BROKER, 5672), (BACKEND, 6379)):
        if reason := _unreachable(url, port):
            pytest.skip(reason)


def use_celery(monkeypatch: pytest.MonkeyPatch, queue: str) -> None:
    """The executor of the definitions this process (and its workers) load: Celery,
    sending steps to ``queue`` only, so no other test's worker takes them."""
    for name, value in {
        "TRAINING_PIPELINE_EXECUTOR": "celery",
        "TRAINING_PIPELINE_CELERY_BROKER": BROKER,
        "TRAINING_PIPELINE_CELERY_BACKEND": BACKEND,
        "TRAINING_PIPELINE_CELERY_QUEUE": queue,
    }.items():
        monkeypatch.setenv(name, value)


def worker_hostname(name: str, queue: str) -> str:
    """The hostname Celery reports for worker ``name`` (its ``--name``, at this host)."""
    return f"{name}-{queue}@{socket.gethostname()}"


def _start_worker(name: str, queue: str, logs: Path, env: Mapping[str, str]) -> subprocess.Popen:
    command = [
        str(Path(sys.executable).parent / "dagster-celery"),
        *("worker", "start", "-A", "dagster_celery.app", "-y", str(CLUSTER / "celery.yaml")),
        *("-q", queue, "--name", f"{name}-{queue}", "--loglevel", "WARNING"),
        # One step at a time, on a thread of the worker's own process: a step may start
        # processes (the tuning fan-out), which a prefork child may not, and the main
        # thread keeps the broker connection alive through a long step (deploy/cluster/
        # celery.yaml).  No step reserved ahead: it would wait while the other worker idles.
        *("--", "--pool", "threads", "--concurrency", "1", "--prefetch-multiplier", "1"),
        *("--without-heartbeat", "--without-gossip"),
    ]
    log = (logs / f"{name}.log").open("w")
    worker_env = {**env, WORKER_NAME_ENV: name}  # `celery` runs from the venv's bin
    # Its own session: the worker's process group is ended as a whole, by its id.
    return subprocess.Popen(
        command, env=worker_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def _wait_until_ready(
    workers: Mapping[str, subprocess.Popen], queue: str, logs: Path, timeout_s: float = 120
) -> None:
    """Return once every worker answers a ping; fail with its log if one exits first."""
    from dagster_celery.executor import CeleryExecutor
    from dagster_celery.make_app import make_app

    app = make_app(CeleryExecutor.for_cli(broker=BROKER, backend=BACKEND).app_args())
    expected = {worker_hostname(name, queue) for name in workers}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for name, worker in workers.items():
            if worker.poll() is not None:
                log = (logs / f"{name}.log").read_text()[-3000:]
                pytest.fail(f"Celery worker {name} exited with {worker.returncode}:\n{log}")
        answered = {name for reply in app.control.ping(timeout=1.0) for name in reply}
        if expected <= answered:
            return
    pytest.fail(f"Celery workers {sorted(expected)} did not answer within {timeout_s} s")


@contextmanager
def celery_workers(names: Sequence[str], queue: str, logs: Path) -> Iterator[None]:
    """Workers ``names`` on ``queue``, with this process's environment (and the tests'
    folder on the path, for the jobs they reconstruct), all listening before this yields:
    else the first one up could take every step.  Stopped, with all their children,
    when it exits."""
    path = os.pathsep.join([str(TESTS), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    env = child_environment({"PYTHONPATH": path}, path_first=str(Path(sys.executable).parent))
    workers = {name: _start_worker(name, queue, logs, env) for name in names}
    try:
        _wait_until_ready(workers, queue, logs)
        yield
    finally:
        for worker in workers.values():
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
        for worker in workers.values():
            worker.wait(timeout=60)
