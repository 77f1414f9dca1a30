"""The `cluster` profile's Dagster side: the instance on PostgreSQL (deploy/cluster/
dagster.yaml) and steps executed by Celery workers (RabbitMQ broker, Redis results).

Each test that needs a service skips, naming it, when it is not reachable."""

from __future__ import annotations

import json
import os
import uuid

import dagster as dg
import pytest
import sqlalchemy as sa
from celery_steps import FREE_STEPS, WAREHOUSE_STEPS, recorded_steps, run_config
from celery_workers import celery_workers, skip_unless_brokers_reachable, use_celery

from training_pipeline.environment import SettingsError
from training_pipeline.execution import ExecutionSettings, build_executor, celery_config
from training_pipeline.resources import WAREHOUSE_POOL
from training_pipeline.runner import limit_pools


@dg.asset
def greeting() -> str:
    return "hello"


@pytest.mark.integration
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


@pytest.mark.slow  # starts two Celery workers
@pytest.mark.postgres
def test_two_celery_workers_share_a_runs_steps_while_the_warehouse_pool_serializes(
    cluster_home, tmp_path, monkeypatch
):
    skip_unless_brokers_reachable()
    queue = f"tp_scale_core_{uuid.uuid4().hex[:8]}"  # no other run's worker takes its steps
    use_celery(monkeypatch, queue)
    log_path = tmp_path / "steps.jsonl"
    with celery_workers(("w1", "w2"), queue, cluster_home), dg.DagsterInstance.get() as instance:
        limit_pools(instance)
        result = dg.execute_job(
            dg.reconstructable(recorded_steps),
            instance=instance,
            run_config=run_config(log_path, seconds=2.0),
        )
        assert result.success
    steps = {line["step"]: line for line in map(json.loads, log_path.read_text().splitlines())}
    assert set(steps) == set(FREE_STEPS + WAREHOUSE_STEPS)
    assert {steps[name]["worker"] for name in steps} == {"w1", "w2"}
    first, second = sorted((steps[n] for n in WAREHOUSE_STEPS), key=lambda s: s["started"])
    assert first["ended"] <= second["started"]  # one slot: never two warehouse writers
