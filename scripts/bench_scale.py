"""Benchmark: the default demo on the `laptop` and `cluster` profiles, step by step.

    .venv/bin/python scripts/bench_scale.py [--trials 20] [--work-dir .bench/scale]

One demo world is generated (untimed, once per ``--work-dir``) and each profile runs
``training-pipeline run`` on a fresh copy of it, with its own Dagster home and a demo
ticket API on a free port:

- laptop: the defaults (instance on SQLite, Optuna on SQLite, one tuning process with
  ``--threads`` threads);
- cluster: the instance on PostgreSQL (deploy/cluster/dagster.yaml), Optuna on
  PostgreSQL, ``--workers`` tuning processes sharing the same ``--threads``.

Both tune ``--trials`` trials with no binding time budget, so the training step does
the same amount of search and its wall time shows what the tuning fan-out buys.  It
prints, per profile, the run's wall and CPU (all its processes) and each step's wall,
then the row counts of both warehouses (they must match) and the training step's
speed-up.  ``training-pipeline run`` runs its steps in its own process on both
profiles: the Celery executor is not in these figures (with the DuckDB warehouse its
one-slot pool runs the warehouse steps one at a time wherever they execute).
Needs PostgreSQL (``--postgres``, an admin URL); two databases are created and dropped.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import dagster as dg
from churn_demo import declared
from churn_demo.benchmark.databases import created_database
from churn_demo.benchmark.measure import HEADER, Measured, cost_row, run_measured
from churn_demo.benchmark.overhead import run_anatomy

from training_pipeline.environment import child_environment, publish
from training_pipeline.runner import table_counts
from training_pipeline.settings import DATA_DIR_ENV, REPO_ROOT, Settings

TRAIN_STEP_SUFFIX = "candidate"  # the tuning step: `<model>__candidate`


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, default=REPO_ROOT / ".bench" / "scale")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    return parser.parse_args(argv)


def run_profile(
    name: str, world: Path, work: Path, instance_yaml: Path, env: dict[str, str]
) -> tuple[Measured, dict[str, float], dict[str, int]]:
    """One ``training-pipeline run`` of the demo on a copy of ``world``."""
    from churn_demo.api_server import DemoApiServer

    data_dir, home = work / name / "data", work / name / "dagster_home"
    shutil.copytree(world, data_dir)
    home.mkdir(parents=True)
    shutil.copyfile(instance_yaml, home / "dagster.yaml")
    publish(DATA_DIR_ENV, str(data_dir))
    settings = Settings.from_env()
    with DemoApiServer(settings, host="127.0.0.1", port=0) as server:
        run_env = child_environment(
            {
                **env,
                "DAGSTER_HOME": str(home),
                declared.api_url_variable(settings): server.url,
                "TRAINING_PIPELINE_LANDING_SETTLE_S": "0",
                "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            }
        )
        command = [str(Path(sys.executable).parent / "training-pipeline"), "run"]
        measured = run_measured(command, run_env)
    # The cluster instance's dagster.yaml reads its connection from the environment.
    os.environ.update({k: v for k, v in env.items() if k.startswith("DAGSTER_PG_")})
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (record,) = instance.get_runs(limit=1)
        steps = run_anatomy(instance, record.run_id).step_s
    return measured, steps, table_counts(settings)


def main(argv: list[str] | None = None) -> int:
    from churn_demo.generator import generate

    args = parse_args(argv)
    work = args.work_dir.resolve()
    world = work / "world"  # kept between invocations: generated once
    for profile in ("laptop", "cluster"):
        shutil.rmtree(work / profile, ignore_errors=True)
    publish(DATA_DIR_ENV, str(world))
    if not world.exists():
        print(f"generating the default demo world in {world} (untimed) ...", flush=True)
        generate(Settings.from_env())
    tuning = {
        "TRAINING_PIPELINE_TUNING_TRIALS": str(args.trials),
        "TRAINING_PIPELINE_TUNING_SECONDS": "3600",  # the trial budget binds
        "TRAINING_PIPELINE_TUNING_THREADS": str(args.threads),
    }
    results = {}
    results["laptop"] = run_profile(
        "laptop", world, work, REPO_ROOT / "dagster_home" / "dagster.yaml", tuning
    )
    with (
        created_database(args.postgres, "tp_bench_dagster") as dagster_db,
        created_database(args.postgres, "tp_bench_optuna") as optuna_db,
    ):
        cluster = {
            **tuning,
            "DAGSTER_PG_HOST": dagster_db.host or "127.0.0.1",
            "DAGSTER_PG_PORT": str(dagster_db.port or 5432),
            "DAGSTER_PG_DB": dagster_db.database or "",
            "DAGSTER_PG_USERNAME": dagster_db.username or "postgres",
            "DAGSTER_PG_PASSWORD": dagster_db.password or "",
            "TRAINING_PIPELINE_OPTUNA_STORAGE": optuna_db.set(
                drivername="postgresql+psycopg2"
            ).render_as_string(hide_password=False),
            "TRAINING_PIPELINE_TUNING_WORKERS": str(args.workers),
        }
        instance_yaml = REPO_ROOT / "deploy" / "cluster" / "dagster.yaml"
        results["cluster"] = run_profile("cluster", world, work, instance_yaml, cluster)

    for name, (measured, steps, _) in results.items():
        print(f"\n{name}: `training-pipeline run`, {args.trials} trials\n{HEADER}")
        print(cost_row("whole process", measured.total))
        for step, seconds in sorted(steps.items(), key=lambda item: -item[1]):
            print(f"{'  step ' + step:<40}{seconds:10.2f}")
    laptop_counts, cluster_counts = results["laptop"][2], results["cluster"][2]
    print(f"\nrow counts equal on both profiles: {laptop_counts == cluster_counts}")
    for table in sorted(set(laptop_counts) | set(cluster_counts)):
        print(f"  {table:<40}{laptop_counts.get(table)!s:>10}{cluster_counts.get(table)!s:>10}")
    steps = [key for key in results["laptop"][1] if key.endswith(TRAIN_STEP_SUFFIX)]
    for step in steps:
        laptop_s, cluster_s = results["laptop"][1][step], results["cluster"][1].get(step)
        if not cluster_s:
            continue
        print(
            f"\ntraining step ({step}): {laptop_s:.1f} s with 1 tuning process, "
            f"{cluster_s:.1f} s with {args.workers}: speed-up {laptop_s / cluster_s:.2f}x "
            f"({args.threads} threads in all on both)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
