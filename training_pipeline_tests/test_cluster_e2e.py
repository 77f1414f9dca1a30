"""The churn example end to end on the whole `cluster` profile (issue 12): the Dagster
instance on PostgreSQL, steps executed by two Celery workers, the warehouse a DuckLake
with its catalog on PostgreSQL and its data on S3 (``moto_server``), tuning fanned out
over two processes into one study on PostgreSQL, against the laptop profile on the same
demo world.

Skips, naming the service, when PostgreSQL, RabbitMQ, Redis or moto_server is absent.
Each service's state is the test's own (databases, bucket, queue) and dropped after it.
"""

from __future__ import annotations

import itertools
import shutil
import uuid
from collections.abc import Mapping

import dagster as dg
import optuna
import pytest
from celery_steps import one_button_job
from celery_workers import (
    celery_workers,
    skip_unless_brokers_reachable,
    use_celery,
    worker_hostname,
)
from churn_demo import declared
from churn_demo.api_server import DemoApiServer
from declared_sources import declared_raw_assets
from ducklake_demo import DemoWorld, build_demo, demo_settings, reconciliations
from postgres_helpers import fresh_database, url_text

from training_pipeline.definitions import build_definitions
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.registries import registry_of
from training_pipeline.resources import DBT_POOL, WAREHOUSE_POOL
from training_pipeline.runner import JOB_NAME, limit_pools, model_selection, table_counts
from training_pipeline.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.postgres]  # workers, dbt, a whole run

# The smallest world whose churn model still trains, reaches the gate and is promoted.
WORLD = DemoWorld(days=250, customers=300, seed=7)
WORKERS = ("w1", "w2")

# The variable the example's orders declaration names in `landing_env`.
ORDERS_LANDING_ENV = "TRAINING_PIPELINE_ORDERS_LANDING"

FEW_TRIALS = {
    "TRAINING_PIPELINE_TUNING_WORKERS": "2",
    "TRAINING_PIPELINE_TUNING_TRIALS": "4",  # two per tuning process
    "TRAINING_PIPELINE_TUNING_SECONDS": "60",
    "TRAINING_PIPELINE_TUNING_THREADS": "2",  # one each
    # The gate is the same code and metric; 300 customers cannot promise the default
    # floor, so the floor is the one the crash-recovery test uses.
    "TRAINING_PIPELINE_GATE_AUC_FLOOR": "0.5",
}


def on_s3(bucket: str) -> dict[str, str]:
    """What the cluster keeps in ``bucket``: one variable per component.

    The warehouse's data files, the model registry, and the order files' landing (the
    variable the orders declaration names in ``landing_env``).
    """
    return {
        "TRAINING_PIPELINE_DUCKLAKE_DATA_PATH": f"s3://{bucket}/lake/",
        "TRAINING_PIPELINE_REGISTRY_URL": f"s3://{bucket}/models/",
        ORDERS_LANDING_ENV: f"s3://{bucket}/orders/",
    }


def deliver_orders_to(s3, prefix: str, settings: Settings) -> list[str]:
    """Move the generated order files from their local landing folder under ``prefix``
    (as a shop on a cluster would upload them); the object names."""
    folder = declared.orders_landing(settings)
    delivered = []
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            s3.put_file(str(path), f"{prefix}{path.name}")
            delivered.append(path.name)
    shutil.rmtree(folder)  # nothing is left to ingest locally
    return delivered


def source_refs(settings: Settings, table: str) -> set[str]:
    with wh.connect(
        settings.warehouse_path, read_only=True, limits=settings.duckdb, lake=settings.lake
    ) as con:
        rows = con.execute(f"select distinct _source_ref from {table}").fetchall()
    return {ref for (ref,) in rows}


def step_spans(instance: dg.DagsterInstance, run_id: str) -> dict[str, tuple[float, float]]:
    """Each step's (start, end) in the instance's event log."""
    ends = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
    spans: dict[str, list[float]] = {}
    for entry in instance.all_logs(run_id, of_type={dg.DagsterEventType.STEP_START, *ends}):
        span = spans.setdefault(entry.step_key, [0.0, 0.0])
        span[entry.dagster_event_type in ends] = entry.timestamp
    return {step: (start, end) for step, (start, end) in spans.items()}


def celery_hosts(instance: dg.DagsterInstance, run_id: str) -> dict[str, list[str]]:
    """Per step, the Celery workers that executed it (each ``--name@host``)."""
    hosts: dict[str, list[str]] = {}
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        metadata = entry.dagster_event.event_specific_data.metadata
        if "Celery worker" in metadata:
            hosts.setdefault(entry.step_key, []).append(metadata["Celery worker"].value)
    return hosts


def writer_steps(job: dg.JobDefinition, steps: Mapping[str, object]) -> set[str]:
    """The steps that write the warehouse: those in its pools."""
    pools = {WAREHOUSE_POOL, DBT_POOL}
    return {step for step in steps if job.graph.node_named(step).definition.pool in pools}


def overlapping(spans: Mapping[str, tuple[float, float]]) -> list[tuple[str, str]]:
    return [
        (a, b)
        for (a, (a_start, a_end)), (b, (b_start, b_end)) in itertools.combinations(
            sorted(spans.items()), 2
        )
        if a_start < b_end and b_start < a_end
    ]


def test_the_churn_example_on_the_cluster_profile_matches_the_laptop_and_deploys_a_model(
    tmp_path, monkeypatch, cluster_home, lake_catalog, s3_bucket
):
    skip_unless_brokers_reachable()
    laptop = build_demo(tmp_path / "laptop", monkeypatch, WORLD)
    laptop_counts, laptop_ledgers = table_counts(laptop), reconciliations(laptop)

    bucket, s3 = s3_bucket
    queue = f"tp_scale_e2e_{uuid.uuid4().hex[:8]}"
    use_celery(monkeypatch, queue)
    with fresh_database("tp_scale_e2e_optuna") as optuna_db:
        study_storage = url_text(optuna_db, "psycopg2")
        cluster_env = {
            "TRAINING_PIPELINE_DUCKLAKE_CATALOG": lake_catalog,
            "TRAINING_PIPELINE_OPTUNA_STORAGE": study_storage,
            **on_s3(bucket),
            **FEW_TRIALS,
        }
        for name, value in cluster_env.items():
            monkeypatch.setenv(name, value)
        # The world is generated locally, as on the laptop; its order files then land
        # in the bucket, where the orders source's landing variable points.
        generated = demo_settings(tmp_path / "cluster", monkeypatch, WORLD)
        delivered = deliver_orders_to(s3, cluster_env[ORDERS_LANDING_ENV][5:], generated)
        with DemoApiServer(generated, host="127.0.0.1", port=0) as api:
            monkeypatch.setenv("TRAINING_PIPELINE_API_URL", api.url)
            cluster = Settings.from_env()
            defs = build_definitions(cluster)
            job = defs.resolve_job_def(JOB_NAME)
            # Churn's slice of the graph, and every source the laptop baseline ingested
            # (the weather file's empty landing folder records a batch too).
            raw = {key for asset in declared_raw_assets(cluster) for key in asset.keys}
            selection = sorted(set(model_selection(defs, "churn")) | raw)
            with (
                celery_workers(WORKERS, queue, cluster_home),
                dg.DagsterInstance.get() as instance,
            ):
                limit_pools(instance, cluster.warehouse_writers)
                result = dg.execute_job(
                    dg.reconstructable(one_button_job),
                    instance=instance,
                    asset_selection=selection,
                )
                failures = [e.message for e in result.all_events if e.is_failure]
                assert result.success, failures
                spans = step_spans(instance, result.run_id)
                hosts = celery_hosts(instance, result.run_id)
        trials = [
            trial
            for summary in optuna.get_all_study_summaries(study_storage)
            for trial in optuna.load_study(
                study_name=summary.study_name, storage=study_storage
            ).trials
        ]

    # Steps ran on both workers, and two warehouse writers at the same time.
    assert set(hosts) == set(spans), "a step ran outside the Celery workers"
    # Regression: on `--pool solo` a long step starved the broker connection, the broker
    # redelivered the step, and the other worker ran it a second time.
    assert {step: ran for step, ran in hosts.items() if len(ran) > 1} == {}
    ran_on = {host for ran in hosts.values() for host in ran}
    assert ran_on == {worker_hostname(name, queue) for name in WORKERS}
    writers = {step: spans[step] for step in writer_steps(job, spans)}
    assert overlapping(writers), f"no two warehouse writers overlapped: {writers}"
    # The same tables, rows and reconciliation as the laptop, from a lake on S3.
    assert cluster.lake is not None and laptop.lake is None
    assert table_counts(cluster) == laptop_counts and laptop_counts["marts.customers"] > 0
    cluster_ledgers = reconciliations(cluster)
    assert cluster_ledgers == laptop_ledgers and all(r.holds for r in cluster_ledgers.values())
    assert s3.glob(f"{bucket}/lake/**/*.parquet"), "no data files in the bucket"
    assert not cluster.warehouse_path.exists()
    # The orders came from the bucket: lineage names their objects (refs differ from the
    # laptop's local paths, which is why counts, not refs, are compared above).
    orders_prefix = cluster_env[ORDERS_LANDING_ENV]
    refs = source_refs(cluster, "raw.orders")
    assert refs and refs <= {orders_prefix + name for name in delivered}, refs
    # Tuning fanned out: both seeds in the one study, the total capped.
    assert len(trials) == 4 and len({t.user_attrs.get("worker_seed") for t in trials}) == 2
    # A production model, promoted through the gate into the registry on S3.
    production = registry_of(cluster, "churn").production()
    assert production is not None and production.gate["passed"]
    assert s3.glob(f"{bucket}/models/churn/**/metadata.json"), "no model in the bucket"
    assert not list(cluster.models_dir.rglob("*.skops")), "a model was written locally"
