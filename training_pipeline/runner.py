"""`training-pipeline run` and `ui`: the whole graph headless, or the Dagster UI.

Both start the companions the configured project needs (an example's ticket API, say;
see ``companions.py``) and stop them when they end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import dagster as dg

from training_pipeline.alerts import alert_log_path
from training_pipeline.assets.source_files import files_sources_of
from training_pipeline.companions import companions_for
from training_pipeline.console import StepProgress, chatter_to, log_path_in
from training_pipeline.environment import child_environment, publish_default
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.ingestion.landing_folder import seconds_until_settled
from training_pipeline.ingestion.landing_s3_survey import seconds_until_settled_s3
from training_pipeline.resources import (
    DBT_POOL,
    TRAINING_POOL,
    WAREHOUSE_POOL,
    FilesSourceResource,
)
from training_pipeline.settings import REPO_ROOT, Settings
from training_pipeline.stale_runs import release_dead_runs, run_tags, watch_for_dead_runs

if TYPE_CHECKING:
    from training_pipeline.spec.model_spec import ModelSpec

JOB_NAME = "retrain_on_latest_data"


def prepare_dagster_home(warehouse_writers: int = 1) -> None:
    """Use the repo's Dagster home unless told otherwise, and set its pool up front.

    The instance's storage and the warehouse pool's limit are created here, once, before
    any run starts: two runs that both found a brand-new instance would otherwise race
    to create them, and one of them could start without the limit.  Runs whose process
    died (killed, machine lost) are marked failed here and their pool slots freed, each
    reported by run id, job, pid and pool (see training_pipeline/stale_runs.py).
    """
    publish_default("DAGSTER_HOME", str(REPO_ROOT / "dagster_home"))
    publish_default("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    with dg.DagsterInstance.get() as instance:
        limit_pools(instance, warehouse_writers)
        release_dead_runs(instance)


def limit_pools(instance: dg.DagsterInstance, warehouse_writers: int = 1) -> None:
    """One slot per pool, but ``warehouse_writers`` (``Settings.warehouse_writers``) for the
    warehouse pool: a DuckLake admits several writers, the DuckDB file one."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        raise RuntimeError(
            f"the Dagster instance at {instance.root_directory} cannot enforce pools, so "
            "runs could open the DuckDB warehouse at the same time"
        )
    for pool in (TRAINING_POOL, DBT_POOL):
        storage.set_concurrency_slots(pool, 1)
    storage.set_concurrency_slots(WAREHOUSE_POOL, warehouse_writers)


def table_counts(settings: Settings) -> dict[str, int]:
    """Row counts of every table and view in the warehouse, by schema.name."""
    if settings.lake is None and not settings.warehouse_path.exists():
        return {}
    with wh.connect(
        settings.warehouse_path, read_only=True, limits=settings.duckdb, lake=settings.lake
    ) as con:
        names = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_catalog = current_database() "
            "and table_schema in ('raw', 'staging', 'marts') order by 1, 2"
        ).fetchall()
        return {
            f"{schema}.{table}": con.execute(
                f"select count(*) from {wh.quote_identifier(schema)}.{wh.quote_identifier(table)}"
            ).fetchall()[0][0]
            for schema, table in names
        }


def settle_waits(
    files: Mapping[str, FilesSourceResource], now: float | None = None
) -> dict[str, float]:
    """Per files source, the seconds until its newest delivery has settled (0: none)."""
    return {
        name: (
            seconds_until_settled(Path(resource.landing_dir), resource.settle_s, now)
            if resource.landing_url is None
            else seconds_until_settled_s3(
                resource.s3(), resource.landing_url, resource.settle_s, now
            )
        )
        for name, resource in sorted(files.items())
    }


def wait_for_settling(files: Mapping[str, FilesSourceResource], terminal: TextIO) -> None:
    """A file that just landed may still be being written; an explicit run waits for
    it (at most the longest settle time) instead of leaving it for the next run."""
    waits = {name: wait_s for name, wait_s in settle_waits(files).items() if wait_s > 0}
    for name, wait_s in waits.items():
        resource = files[name]
        print(
            f"waiting {wait_s:.1f} s for files of source {name!r} that changed in the last "
            f"{resource.settle_s:g} s to settle ({resource.settle_s_from})",
            file=terminal,
        )
    if waits:
        time.sleep(max(waits.values()))


def summarize(
    result: dg.ExecuteInProcessResult,
    settings: Settings,
    specs: Mapping[str, ModelSpec],
    files: Mapping[str, FilesSourceResource] = {},
) -> str:
    """The run's outcome; ``specs``: the declared models, from the project the run loaded."""
    from training_pipeline.model_summary import model_lines, result_outcomes

    materialized = sorted(
        e.asset_key.to_user_string() for e in result.get_asset_materialization_events()
    )
    checks = result.get_asset_check_evaluations()
    failed_checks = [
        f"{c.asset_key.to_user_string()}:{c.check_name} ({c.severity.value})"
        for c in checks
        if not c.passed
    ]
    lines = [
        f"run {result.run_id}: {'succeeded' if result.success else 'FAILED'}",
        f"materialized {len(materialized)} assets: {', '.join(materialized)}",
        f"asset checks: {len(checks) - len(failed_checks)} passed, {len(failed_checks)} failed"
        + (f" — {', '.join(failed_checks)}" if failed_checks else ""),
        "rows:",
        *(f"  {name:<32} {count:>10,}" for name, count in table_counts(settings).items()),
        *model_lines(settings, specs, result_outcomes(result, list(specs))),
        f"warehouse: {settings.warehouse_path}",
        *(f"quarantine: {resource.quarantine_dir} ({name})" for name, resource in files.items()),
    ]
    return "\n".join(lines)


def model_selection(defs: dg.Definitions, model: str) -> list[dg.AssetKey]:
    """One model's slice of the graph: what its training set reads, and all it feeds.

    The dbt project is built whole: its tests reach across models (a relationship test
    of one mart reads another), so a slice of it could fail on a table it never built.
    """
    graph = defs.resolve_asset_graph()
    training_set = dg.AssetSelection.assets(dg.AssetKey([model, "training_set"]))
    selected = set((training_set.upstream() | training_set.downstream()).resolve(graph))
    for key in list(selected):
        selected |= graph.get(key).assets_def.keys  # the rest of a multi-asset (dbt)
    return sorted(selected)


def run_everything(settings: Settings, model: str | None = None) -> int:
    """Run the whole graph, or (``model``) only what that declared model needs and feeds.

    The terminal gets a line per step and the summary; what the libraries print goes to
    the data directory's log file (``console.py``)."""
    log_path = log_path_in(settings.data_dir)
    # The companions start before the definitions load: a source's base URL may point at
    # a companion served on a free port (companions.py).
    with chatter_to(log_path) as terminal, companions_for(settings) as companions:
        print(f"library output and dbt's log: {log_path}", file=terminal)
        for line in companions:
            print(line, file=terminal)
        return _run_everything(settings, model, terminal)


def _run_everything(settings: Settings, model: str | None, terminal: TextIO) -> int:
    prepare_dagster_home(settings.warehouse_writers)
    from training_pipeline.components import COMPONENT_TYPES
    from training_pipeline.components.loader import load_project
    from training_pipeline.components.models import models_of
    from training_pipeline.definitions import build_definitions

    # Loaded first, and once: a bad declaration stops the command before anything
    # starts, and the summary reads the declared models from the same load.
    project = load_project(settings, COMPONENT_TYPES)
    defs = build_definitions(settings, project)
    job = defs.resolve_job_def(JOB_NAME)
    selection = None if model is None else model_selection(defs, model)
    files = files_sources_of(defs)
    wait_for_settling(files, terminal)
    with (
        dg.DagsterInstance.get() as instance,
        # The run this one queues behind may die while this one waits for its slot.
        watch_for_dead_runs(),
    ):
        run_id = str(uuid.uuid4())
        with StepProgress(instance, run_id, terminal).running():
            result = job.execute_in_process(
                instance=instance,
                run_id=run_id,
                asset_selection=selection,
                raise_on_error=False,
                # Every event is in the run's log in the UI; the terminal gets the summary.
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                # The pid and host let a later command tell that this run died, if it does.
                tags=run_tags(),
            )
        print(summarize(result, settings, models_of(project), files), file=terminal)
        if not result.success:
            print("\n".join(alert_failed(instance, result, settings)), file=terminal)
    return 0 if result.success else 1


def alert_failed(
    instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult, settings: Settings
) -> list[str]:
    """Alert the failed run exactly as the daemon's run-failure sensor would.

    A run executed here never passes through a daemon, and one may not be running; the
    alert log keeps a run from being alerted twice if one is.
    """
    from training_pipeline.automation.alerts import alert_failed_run

    failure = result.get_run_failure_event()
    delivered = alert_failed_run(instance, result.dagster_run, failure, settings)
    if not delivered:
        return [f"alert: run {result.run_id} was already alerted"]
    return [
        f"alert: {alert.kind} for run {alert.run_id}, {outcome.status}"
        + (f": {outcome.error}" if outcome.error else "")
        + f" (log: {alert_log_path(settings)})"
        for alert, outcome in delivered
    ]


def run_ui(settings: Settings, host: str, port: int) -> int:
    prepare_dagster_home(settings.warehouse_writers)
    bin_dir = os.path.dirname(sys.executable)
    command = [os.path.join(bin_dir, "dagster"), "dev", "-w", "workspace.yaml"]
    with companions_for(settings) as companions:
        for line in companions:
            print(line)
        # Read inside the block: a companion may have set a source's base-URL variable.
        # dagster-dbt's dev-mode manifest refresh runs plain `dbt`, so it must be on PATH
        # even when the virtual environment is not activated.
        env = child_environment(path_first=bin_dir)
        # Its own process group, so stopping it reaches the webserver, daemon and code
        # server it starts, wherever this command was started from.
        process = subprocess.Popen(
            [*command, "-h", host, "-p", str(port)],
            cwd=REPO_ROOT,
            env=env,
            start_new_session=True,
        )
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            return process.wait()
        except KeyboardInterrupt:
            return _stop(process)


def _stop(process: subprocess.Popen, grace_s: float = 30.0) -> int:
    os.killpg(process.pid, signal.SIGINT)
    try:
        return process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        # Started from a non-interactive shell, dagster dev inherits SIGINT ignored.
        os.killpg(process.pid, signal.SIGKILL)
        return process.wait()
