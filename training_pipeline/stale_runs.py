"""Runs whose process died: found, reported, marked failed, and their pool slots freed.

A run killed with SIGKILL (or on a machine that lost power) ends nothing: Dagster still
lists it as STARTED and its claim on a pool slot stays.  DuckDB's file lock goes with the
process, but a pool slot is a row in the instance's database, so every later run would
queue behind it forever.  Dagster's run monitoring frees such slots only inside the daemon
(``make ui``) and only for runs its run launcher started; ``training-pipeline run`` has
neither.  So ``run``, ``retrain`` and ``ui`` look before they start, and a run keeps
looking while it executes (``watch_for_dead_runs``), because the run it waits behind may
die while it waits.

A run is dead when the process that executes its steps is gone.  That process's pid is on
the run's tags when ``training-pipeline run`` started it (with the host, so a run started
on another machine sharing the instance is never judged from here), otherwise on the
engine event Dagster's executors log when they start executing steps.  A pid the kernel
gave to a newer process (started after the evidence was written) or a zombie counts as
gone.  A worker that led its own process group (a shell job, or a session of its own)
counts as alive while any process of that group lives: when the worker alone was killed,
the dbt it started goes on writing the warehouse until it finishes.  A run that cannot be
judged is left alone: wrongly failing a live run would let two writers into the warehouse.
"""

import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

log = logging.getLogger(__name__)

PID_TAG = "training_pipeline/pid"
GROUP_TAG = "training_pipeline/process_group"
HOST_TAG = "training_pipeline/host"
# The kernel reports process start times in clock ticks; allow for that and for clocks.
START_TIME_SLACK_S = 2.0
DEFAULT_INTERVAL_S = 5.0


@dataclass(frozen=True)
class DeadRun:
    """A run listed as started whose worker process no longer exists."""

    run_id: str
    job_name: str
    pid: int
    pools: tuple[str, ...]  # pools in which it held a slot (or had a step queued)

    @property
    def message(self) -> str:
        if not self.pools:
            return (
                f"run {self.run_id} of job {self.job_name} (pid {self.pid}) died holding no "
                "pool slot; marking it failed"
            )
        names = ", ".join(self.pools)
        plural = "s" if len(self.pools) > 1 else ""
        return (
            f"run {self.run_id} of job {self.job_name} (pid {self.pid}) died while holding "
            f"the {names} pool{plural}; marking it failed and freeing its slot{plural}"
        )


def run_tags() -> dict[str, str]:
    """Tags that let a later command judge whether this process's run is still alive."""
    return {
        PID_TAG: str(os.getpid()),
        GROUP_TAG: str(os.getpgrp()),
        HOST_TAG: socket.gethostname(),
    }


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise RuntimeError("/proc/stat has no btime line")


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from the state field on, or None when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces


def process_is_alive(pid: int, started_by: float | None = None) -> bool:
    """Whether ``pid`` is a live process that existed at time ``started_by`` (epoch s).

    Without /proc (not Linux) only existence can be checked.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    if not Path("/proc/self/stat").exists():
        return True
    fields = _stat(pid)
    if fields is None or fields[0] in ("Z", "X"):  # a zombie has exited already
        return False
    if started_by is None:
        return True
    started_at = _boot_time() + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return started_at <= started_by + START_TIME_SLACK_S


def group_survivors(group: int) -> list[int]:
    """Live processes of process group ``group``: children a killed leader left behind
    (dbt, which may still be writing the warehouse)."""
    survivors = []
    for entry in Path("/proc").iterdir():
        fields = _stat(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None and fields[0] not in ("Z", "X") and int(fields[2]) == group:
            survivors.append(int(entry.name))
    return survivors


@dataclass(frozen=True)
class _Worker:
    pid: int
    started_by: float  # the process existed by then (it wrote the evidence)
    group: int | None  # the process group it led, whose members are its own children

    def is_alive(self) -> bool:
        if process_is_alive(self.pid, self.started_by):
            return True
        return self.group is not None and bool(group_survivors(self.group))


def _storage_is_local(instance: dg.DagsterInstance) -> bool:
    """SQLite run storage lives under DAGSTER_HOME, so its runs ran on this machine."""
    return type(instance.run_storage).__name__.startswith("Sqlite")


def _worker(instance: dg.DagsterInstance, record) -> _Worker | None:
    """The run's worker process, or None when it cannot be known from here."""
    tags = record.dagster_run.tags
    if PID_TAG in tags:
        if tags.get(HOST_TAG) != socket.gethostname():
            return None
        pid, group = int(tags[PID_TAG]), int(tags.get(GROUP_TAG, -1))
        # Only a group the worker led holds nothing but its own descendants.
        return _Worker(pid, record.create_timestamp.timestamp(), group if group == pid else None)
    if not _storage_is_local(instance):
        return None
    engine_events = instance.get_records_for_run(
        record.dagster_run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT
    ).records
    for event_record in engine_events:
        entry = event_record.event_log_entry
        data = entry.dagster_event.event_specific_data if entry.dagster_event else None
        pid = getattr(data, "metadata", {}).get("pid") if data is not None else None
        if pid is not None and entry.step_key is None:  # the run worker, not a step's child
            return _Worker(int(pid.value), entry.timestamp, None)
    return None


def _pools_of(instance: dg.DagsterInstance, run_id: str) -> tuple[str, ...]:
    storage = instance.event_log_storage
    pools = []
    for pool in sorted(storage.get_concurrency_keys()):
        info = storage.get_concurrency_info(pool)
        holders = [s.run_id for s in info.claimed_slots] + [p.run_id for p in info.pending_steps]
        if run_id in holders:
            pools.append(pool)
    return tuple(pools)


def find_dead_runs(instance: dg.DagsterInstance) -> list[DeadRun]:
    """Started runs of this instance whose worker process is gone."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])
    )
    own = run_tags()
    dead = []
    for record in records:
        tags = record.dagster_run.tags
        if (tags.get(PID_TAG), tags.get(HOST_TAG)) == (own[PID_TAG], own[HOST_TAG]):
            continue  # this process's own run, alive by definition (its log may be new)
        worker = _worker(instance, record)
        if worker is None or worker.is_alive():
            continue
        run = record.dagster_run
        dead.append(DeadRun(run.run_id, run.job_name, worker.pid, _pools_of(instance, run.run_id)))
    return dead


def release_dead_runs(instance: dg.DagsterInstance) -> list[DeadRun]:
    """Mark every dead run failed, then free its pool slots; log and return what was done.

    Failed first, so a slot is never free while its run still looks started.
    """
    storage = instance.event_log_storage
    released = []
    for run in find_dead_runs(instance):
        dagster_run = instance.get_run_by_id(run.run_id)
        if dagster_run is None or dagster_run.status != dg.DagsterRunStatus.STARTED:
            continue  # another command released it meanwhile
        log.warning(run.message)
        instance.report_run_failed(dagster_run, message=run.message)
        if storage.supports_global_concurrency_limits:
            storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run)
    return released


@dataclass
class Watch:
    """What ``watch_for_dead_runs`` has done so far."""

    released: list[DeadRun] = field(default_factory=list)
    rounds: int = 0


@contextmanager
def watch_for_dead_runs(interval_s: float = DEFAULT_INTERVAL_S) -> Iterator[Watch]:
    """Release dead runs every ``interval_s`` seconds while the block runs.

    The watcher opens its own instance (DAGSTER_HOME), so it shares no connection with
    the run it watches over.  A locked instance database is retried the next round; any
    other error stops the watcher and is raised when the block ends.
    """
    watch = Watch()
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop() -> None:
        try:
            with dg.DagsterInstance.get() as instance:
                while not stop.wait(interval_s):
                    try:
                        watch.released.extend(release_dead_runs(instance))
                    except sa.exc.OperationalError as busy:  # the instance's SQLite, locked
                        log.warning(f"could not look for dead runs ({busy}); trying again")
                    watch.rounds += 1
        except BaseException as error:  # re-raised in the caller's thread below
            errors.append(error)

    thread = threading.Thread(target=loop, name="dead-run-watcher", daemon=True)
    thread.start()
    try:
        yield watch
    finally:
        stop.set()
        thread.join()
    if errors:
        raise RuntimeError("watching for dead runs failed") from errors[0]
