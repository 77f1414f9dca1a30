"""Start ``training-pipeline run`` and SIGKILL it, with everything it started, mid-stage.

The run is found in the Dagster instance by the pid tag ``training-pipeline run`` puts
on it, and its event log says which step is running.  Each stage has a trigger chosen
so the kill lands inside the step, not just before or after it:

- ``orders``: at the start of ``raw__orders`` (it loads one file per transaction, so
  the kill usually falls between files when many landed);
- ``tickets``: at the start of ``raw__tickets``; the caller makes the ticket API slow to
  answer first (``Fault(delay_s=...)``), so the step is waiting inside its transaction;
- ``dbt``: once dbt has materialized its first model of ``cleaned_tables``;
- ``training``: once Optuna has finished its first trial in ``churn__candidate``;
- ``deployment``: at the start of ``churn__production``, while this process holds the
  registry's writer lock (taken when validation finishes), so the promotion is waiting
  for it and cannot finish before the kill.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from training_pipeline.stale_runs import PID_TAG

POLL_S = 0.02
STEP_EVENTS = {
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.ASSET_MATERIALIZATION,
}


@dataclass(frozen=True)
class Stage:
    name: str
    step_key: str
    after_materialization: bool = False  # wait for the step's first materialization
    output_marker: str | None = None  # wait for this regex in the pipeline's log file
    lock_registry_after: str | None = None  # hold the registry lock once this step ends


STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in (
        Stage("orders", "raw__orders"),
        Stage("tickets", "raw__tickets"),
        Stage("dbt", "cleaned_tables", after_materialization=True),
        Stage("training", "churn__candidate", output_marker=r"Trial \d+ finished"),
        Stage("deployment", "churn__production", lock_registry_after="churn__validation"),
    )
}


@dataclass(frozen=True)
class KillOutcome:
    stage: str
    run_id: str | None
    killed: bool  # False: the run ended before the stage's trigger
    interrupted: bool  # the stage's step had started and had not finished
    returncode: int
    seconds: float
    log: Path


def start_run(cli: str, env: Mapping[str, str], log: Path, *args: str) -> subprocess.Popen:
    """``training-pipeline run`` in its own session (so one signal reaches dbt too)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        return subprocess.Popen(
            [cli, "run", *args],
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill_group(process: subprocess.Popen) -> int:
    with contextlib.suppress(ProcessLookupError):  # the group has already gone
        os.killpg(process.pid, signal.SIGKILL)
    return process.wait()


def _run_id(instance: dg.DagsterInstance, pid: int, since: datetime) -> str | None:
    """The run process ``pid`` created after ``since`` (an older run may share the pid)."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(tags={PID_TAG: str(pid)}, created_after=since), limit=1
    )
    return runs[0].run_id if runs else None


class _Watch:
    """The killed run's progress through the stage, from its event log and from the
    pipeline's log file (``log``), where the libraries' output goes (Optuna's trials)."""

    def __init__(self, stage: Stage, log: Path) -> None:
        self.stage, self.log = stage, log
        self.cursor: str | None = None
        self.started = self.finished = self.materialized = False
        self.output_from = 0
        self.ended: set[str] = set()

    def update(self, instance: dg.DagsterInstance, run_id: str) -> None:
        found = instance.get_records_for_run(run_id, cursor=self.cursor, of_type=STEP_EVENTS)
        self.cursor = found.cursor
        for record in found.records:
            entry = record.event_log_entry
            kind = entry.dagster_event_type
            if kind in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
                self.ended.add(entry.step_key)
            if entry.step_key != self.stage.step_key:
                continue
            if kind == dg.DagsterEventType.STEP_START:
                self.started = True
                self.output_from = self.log.stat().st_size if self.log.exists() else 0
            elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
                self.materialized = True
        self.finished = self.stage.step_key in self.ended

    def triggered(self) -> bool:
        if not self.started or self.finished:
            return False
        if self.stage.after_materialization:
            return self.materialized
        if self.stage.output_marker:
            with open(self.log, "rb") as handle:
                handle.seek(self.output_from)
                text = handle.read().decode(errors="replace")
            return re.search(self.stage.output_marker, text) is not None
        return True


def kill_at(
    process: subprocess.Popen,
    stage: Stage,
    dagster_home: Path,
    log: Path,
    models_dir: Path,
    timeout_s: float,
    pipeline_log: Path,
) -> KillOutcome:
    """Watch the run ``process`` started and SIGKILL its process group inside ``stage``;
    ``pipeline_log`` is the data directory's log file (``training_pipeline/console.py``)."""
    begun, since = time.monotonic(), datetime.now(UTC) - timedelta(seconds=1)
    watch = _Watch(stage, pipeline_log)
    run_id = None
    lock = None
    try:
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            while process.poll() is None:
                if time.monotonic() - begun > timeout_s:
                    kill_group(process)
                    raise TimeoutError(
                        f"run pid {process.pid} did not reach stage {stage.name} within "
                        f"{timeout_s:.0f} s; its output is in {log}"
                    )
                run_id = run_id or _run_id(instance, process.pid, since)
                if run_id is not None:
                    watch.update(instance, run_id)
                    if lock is None and stage.lock_registry_after in watch.ended:
                        models_dir.mkdir(parents=True, exist_ok=True)
                        lock = open(models_dir / ".registry.lock", "a")  # noqa: SIM115
                        fcntl.flock(lock, fcntl.LOCK_EX)
                    if watch.triggered():
                        returncode = kill_group(process)
                        watch.update(instance, run_id)
                        return KillOutcome(
                            stage.name,
                            run_id,
                            True,
                            watch.started and not watch.finished,
                            returncode,
                            time.monotonic() - begun,
                            log,
                        )
                time.sleep(POLL_S)
    finally:
        if lock is not None:
            lock.close()
    return KillOutcome(
        stage.name, run_id, False, False, process.returncode, time.monotonic() - begun, log
    )


def run_to_completion(
    cli: str, env: Mapping[str, str], log: Path, timeout_s: float
) -> tuple[int, str]:
    """Run ``training-pipeline run`` to its end; (exit code, its output)."""
    process = start_run(cli, env, log)
    try:
        returncode = process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_group(process)
        raise TimeoutError(
            f"training-pipeline run took over {timeout_s:.0f} s; see {log}"
        ) from None
    return returncode, log.read_text(errors="replace")
