"""``scripts/bench.py --overhead``: one default demo run, split into fixed costs and work."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import dagster as dg

from churn_demo import declared
from churn_demo.benchmark.measure import HEADER, cost_row, run_measured
from churn_demo.benchmark.overhead import dbt_invocations, run_anatomy
from training_pipeline.environment import child_environment, publish
from training_pipeline.settings import DATA_DIR_ENV, REPO_ROOT, Settings

DBT_STEP = "cleaned_tables"


def overhead_mode(work: Path) -> None:
    from churn_demo.api_server import DemoApiServer
    from churn_demo.generator import generate

    shutil.rmtree(work, ignore_errors=True)
    home = work / "dagster_home"
    home.mkdir(parents=True)
    shutil.copyfile(REPO_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    publish(DATA_DIR_ENV, str(work / "data"))  # this process and the runs it starts
    settings = Settings.from_env()
    print(f"generating the default demo world in {settings.data_dir} (untimed) ...")
    generate(settings)
    bin_dir = Path(sys.executable).parent
    with DemoApiServer(settings, host="127.0.0.1", port=0) as server:
        env = child_environment(
            {
                "DAGSTER_HOME": str(home),
                declared.api_url_variable(settings): server.url,
                "TRAINING_PIPELINE_LANDING_SETTLE_S": "0",
                "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            }
        )
        # As `make install` does for the data directory `make run` then uses (untimed):
        # the run's first dbt invocation starts from this parse (project.py).
        run_measured([str(bin_dir / "training-pipeline"), "dbt-parse"], env)
        definitions = run_measured(
            [sys.executable, "-c", "import training_pipeline.definitions"], env
        ).total
        load_before = os.getloadavg()
        run = run_measured([str(bin_dir / "training-pipeline"), "run"], env)
        load_after = os.getloadavg()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (record,) = instance.get_runs(limit=1)
        anatomy = run_anatomy(instance, record.run_id)
    invocations = dbt_invocations(settings.dbt_state_dir / "dbt.log")
    step_total = sum(anatomy.step_s.values())
    outside_run = run.total.wall_s - anatomy.run_wall_s
    gaps = anatomy.run_wall_s - step_total
    parse = sum(i.parse_s for i in invocations)
    before_dbt = (
        invocations[0].started_at.timestamp() - anatomy.step_started[DBT_STEP]
        if invocations and DBT_STEP in anatomy.step_started
        else 0.0
    )
    fixed = outside_run + gaps + parse + before_dbt
    print(f"\na default demo run (`training-pipeline run`)\n{HEADER}")
    print(cost_row("whole process", run.total))
    print(cost_row("  process start + definitions (alone)", definitions))
    print(f"{'  outside the run (start-up, summary)':<40}{outside_run:10.2f}")
    print(f"{'  inside the run, between steps':<40}{gaps:10.2f}")
    print(f"{'  dbt step before dbt starts':<40}{before_dbt:10.2f}")
    print(f"{'  dbt parse':<40}{parse:10.2f}")
    for step, seconds in sorted(anatomy.step_s.items(), key=lambda item: -item[1]):
        print(f"{'  step ' + step:<40}{seconds:10.2f}")
    print(
        f"fixed costs (outside the run + between steps + dbt start and parse): "
        f"{fixed:.1f} s of {run.total.wall_s:.1f} s = {fixed / run.total.wall_s:.0%} "
        "(target <= 20%)"
    )
    print(f"run {record.run_id}: {record.status.value}")
    print(
        "load average (1, 5, 15 min) before the run "
        + ", ".join(f"{x:.1f}" for x in load_before)
        + "; after "
        + ", ".join(f"{x:.1f}" for x in load_after)
        + f" ({os.cpu_count()} CPUs)"
    )
