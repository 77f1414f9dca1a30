"""The `cluster` profile's Dagster side: the instance on PostgreSQL (deploy/cluster/
dagster.yaml) and steps executed by Celery workers (RabbitMQ broker, Redis results).

Each test that needs a service skips, naming it, when it is not reachable."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from celery_steps import FREE_STEPS, WAREHOUSE_STEPS, WORKER_NAME_ENV, recorded_steps, run_config
from postgres_helpers import fresh_database

from training_pipeline.environment import SettingsError, child_environment
from training_pipeline.execution import ExecutionSettings, build_executor, celery_config
from training_pipeline.resources import WAREHOUSE_POOL
from training_pipeline.runner import limit_pools
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


@dg.asset
def greeting() -> str:
    return "hello"


@pytest.mark.postgres
def test_the_cluster_instance_keeps_runs_and_pool_slots_in_postgres(cluster_home):
    with dg.DagsterInstance.from_config(str(cluster_home)) as instance:
        limit_pools(instance)
        result = dg.materialize([greeting], instance=instance)
        assert result.success
        slots = instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).slot_count
    url = sa.URL.create(
        "postgresql+psycopg2",
        username=os.environ["DAGSTER_PG_USERNAME"],
        password=os.environ["DAGSTER_PG_PASSWORD"] or None,
        host=os.environ["DAGSTER_PG_HOST"],
        port=int(os.environ["DAGSTER_PG_PORT"]),
        database=os.environ["DAGSTER_PG_DB"],
    )
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        run_ids = conn.execute(sa.text("select run_id from runs")).scalars().all()
        pools = conn.execute(sa.text("select distinct concurrency_key from concurrency_slots"))
        pool_names = set(pools.scalars())
    engine.dispose()
    assert run_ids == [result.run_id]
    assert slots == 1 and WAREHOUSE_POOL in pool_names


def test_the_laptop_profile_runs_every_step_in_the_runs_own_process():
    assert build_executor(ExecutionSettings.from_env({})) is dg.in_process_executor


def test_the_celery_executor_names_its_queue_and_hands_a_set_broker_on_by_name(monkeypatch):
    monkeypatch.setenv("TRAINING_PIPELINE_CELERY_BROKER", "amqp://app:s3cret@mq:5672//")
    execution = ExecutionSettings(executor="celery", celery_queue="team_a")
    config = celery_config(execution)
    assert config["broker"] == {"env": "TRAINING_PIPELINE_CELERY_BROKER"}
    assert config["backend"] == "redis://127.0.0.1:6379/0"
    assert config["config_source"] == {"task_default_queue": "team_a"}
    assert build_executor(execution).name == "celery"


def test_the_k8s_executor_without_dagster_k8s_is_refused_with_what_to_install():
    with pytest.raises(SettingsError, match="needs dagster-k8s"):
        build_executor(ExecutionSettings(executor="k8s"))


def _reachable(url: str, default_port: int) -> str | None:
    """None when something listens at ``url``'s host and port, else why not."""
    parts = sa.make_url(url.replace("amqp://", "amqp+x://").replace("redis://", "redis+x://"))
    address = (parts.host or "127.0.0.1", parts.port or default_port)
    try:
        socket.create_connection(address, timeout=2).close()
    except OSError as error:
        return f"{url.split('@')[-1]} not reachable: {error}"
    return None


def _start_worker(name: str, queue: str, home: Path, env: dict[str, str]) -> subprocess.Popen:
    command = [
        str(Path(sys.executable).parent / "dagster-celery"),
        *("worker", "start", "-A", "dagster_celery.app", "-y", str(CLUSTER / "celery.yaml")),
        *("-q", queue, "--name", f"{name}-{queue}", "--loglevel", "WARNING"),
        *("--", "--concurrency", "1", "--without-heartbeat", "--without-gossip"),
    ]
    log = (home / f"{name}.log").open("w")
    worker_env = {**env, WORKER_NAME_ENV: name}  # `celery` runs from the venv's bin
    # Its own session: the worker's process group is ended as a whole, by its id.
    return subprocess.Popen(
        command, env=worker_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def _wait_until_ready(
    workers: dict[str, subprocess.Popen], queue: str, home: Path, timeout_s: float = 120
) -> None:
    """Return once every worker answers a ping; fail with its log if one exits first."""
    from dagster_celery.executor import CeleryExecutor
    from dagster_celery.make_app import make_app

    app = make_app(CeleryExecutor.for_cli(broker=BROKER, backend=BACKEND).app_args())
    expected = {f"{name}-{queue}@{socket.gethostname()}" for name in workers}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for name, worker in workers.items():
            if worker.poll() is not None:
                log = (home / f"{name}.log").read_text()[-3000:]
                pytest.fail(f"Celery worker {name} exited with {worker.returncode}:\n{log}")
        answered = {name for reply in app.control.ping(timeout=1.0) for name in reply}
        if expected <= answered:
            return
    pytest.fail(f"Celery workers {sorted(expected)} did not answer within {timeout_s} s")


@pytest.mark.slow  # starts two Celery workers
@pytest.mark.postgres
def test_two_celery_workers_share_a_runs_steps_while_the_warehouse_pool_serializes(
    cluster_home, tmp_path, monkeypatch
):
    for url, port in ((BROKER, 5672), (BACKEND, 6379)):
        if reason := _reachable(url, port):
            pytest.skip(reason)
    queue = f"tp_scale_core_{uuid.uuid4().hex[:8]}"  # no other run's worker takes its steps
    settings = {
        "TRAINING_PIPELINE_EXECUTOR": "celery",
        "TRAINING_PIPELINE_CELERY_BROKER": BROKER,
        "TRAINING_PIPELINE_CELERY_BACKEND": BACKEND,
        "TRAINING_PIPELINE_CELERY_QUEUE": queue,
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    path = os.pathsep.join([str(TESTS), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    env = child_environment({"PYTHONPATH": path}, path_first=str(Path(sys.executable).parent))
    workers = {name: _start_worker(name, queue, cluster_home, env) for name in ("w1", "w2")}
    log_path = tmp_path / "steps.jsonl"
    try:
        # Both listen before any step is sent: else the first up could take them all.
        _wait_until_ready(workers, queue, cluster_home)
        with dg.DagsterInstance.get() as instance:
            limit_pools(instance)
            result = dg.execute_job(
                dg.reconstructable(recorded_steps),
                instance=instance,
                run_config=run_config(log_path, seconds=2.0),
            )
            assert result.success
    finally:
        for worker in workers.values():
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
        for worker in workers.values():
            worker.wait(timeout=60)
    steps = {line["step"]: line for line in map(json.loads, log_path.read_text().splitlines())}
    assert set(steps) == set(FREE_STEPS + WAREHOUSE_STEPS)
    assert {steps[name]["worker"] for name in steps} == {"w1", "w2"}
    first, second = sorted((steps[n] for n in WAREHOUSE_STEPS), key=lambda s: s["started"])
    assert first["ended"] <= second["started"]  # one slot: never two warehouse writers
