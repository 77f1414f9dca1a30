"""A run killed while it holds a pool slot: the slot is freed by the next command, while
a live run's slot still makes the next run wait, and a worker killed alone is waited for
until the child it left behind (dbt) has finished."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from churn_demo.reliability import kills

from training_pipeline import stale_runs
from training_pipeline.runner import limit_pools

pytestmark = pytest.mark.integration  # runs killed mid-way in processes of their own

REPO = Path(__file__).parents[1]
HOLDER = """
import subprocess
import sys
import dagster as dg
from training_pipeline.stale_runs import run_tags

@dg.asset(pool="warehouse")
def {name}() -> None:
    if {leave_a_child}:
        subprocess.Popen(["sleep", "600"])  # as the run starts dbt, in its process group
    sys.stdin.readline()  # holds the pool slot until the test says so (or kills us)

tags = {{"holder": "{name}"}} | (run_tags() if {leave_a_child} else {{}})
with dg.DagsterInstance.get() as instance:
    result = dg.materialize([{name}], instance=instance, tags=tags)
sys.exit(0 if result.success else 1)
"""


def new_dagster_home(path: Path) -> Path:
    path.mkdir()
    (path / "dagster.yaml").write_text((REPO / "dagster_home" / "dagster.yaml").read_text())
    with dg.DagsterInstance.from_config(str(path)) as instance:
        limit_pools(instance)  # as `training-pipeline run` does before any run
    return path


def wait_for(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


class Holder:
    """A real Dagster run in another process, holding (or queued for) the warehouse slot."""

    def __init__(self, tmp_path: Path, home: Path, name: str, leave_a_child: bool = False):
        # With a child, tagged as `training-pipeline run` tags its runs; without, Dagster's
        # engine event is the only record of the worker's pid.
        script = tmp_path / f"{name}.py"
        script.write_text(HOLDER.format(name=name, leave_a_child=leave_a_child))
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, str(script)],
            env=os.environ | {"DAGSTER_HOME": str(home)},
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def run(self, instance: dg.DagsterInstance) -> dg.DagsterRun | None:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"holder": self.name}))
        return runs[0] if runs else None

    def kill(self) -> None:
        kills.kill_group(self.process)


def slot_holders(instance: dg.DagsterInstance) -> list[str]:
    return [
        s.run_id for s in instance.event_log_storage.get_concurrency_info("warehouse").claimed_slots
    ]


def pending(instance: dg.DagsterInstance) -> list[str]:
    return [
        p.run_id for p in instance.event_log_storage.get_concurrency_info("warehouse").pending_steps
    ]


def sleeping_child(group: int) -> int | None:
    """The ``sleep 600`` the holder's step started in its process group, once it runs."""
    for pid in stale_runs.group_survivors(group):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError):  # it ended since it was listed
            continue
        if cmdline[:2] == [b"sleep", b"600"]:
            return pid
    return None


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = new_dagster_home(tmp_path / "dagster_home")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    yield home


@pytest.mark.timeout(240)
def test_a_killed_run_is_reported_marked_failed_and_its_warehouse_slot_freed(tmp_path, home):
    holder = Holder(tmp_path, home, "holds_the_warehouse")
    try:
        with dg.DagsterInstance.get() as instance:
            run = wait_for(lambda: holder.run(instance), 120, "the holder's run")
            wait_for(lambda: run.run_id in slot_holders(instance), 60, "the holder's slot")
            assert stale_runs.release_dead_runs(instance) == []  # alive: left alone

            holder.kill()
            released = stale_runs.release_dead_runs(instance)

            assert [(d.run_id, d.pools) for d in released] == [(run.run_id, ("warehouse",))]
            assert released[0].pid == holder.process.pid
            assert released[0].message == (
                f"run {run.run_id} of job __ephemeral_asset_job__ (pid {holder.process.pid}) "
                "died while holding the warehouse pool; marking it failed and freeing its slot"
            )
            assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
            assert slot_holders(instance) == []
            assert stale_runs.release_dead_runs(instance) == []  # once is enough
    finally:
        holder.kill()


@pytest.mark.timeout(240)
def test_a_run_whose_worker_alone_was_killed_waits_for_the_child_it_left_behind(tmp_path, home):
    holder = Holder(tmp_path, home, "leaves_dbt_running", leave_a_child=True)
    try:
        with dg.DagsterInstance.get() as instance:
            run = wait_for(lambda: holder.run(instance), 120, "the holder's run")
            wait_for(lambda: run.run_id in slot_holders(instance), 60, "the holder's slot")
            group = holder.process.pid
            # Only the child the step started: Dagster's own helpers (its compute-log
            # tails) join the group too, come and go, and are not what this is about.
            child = wait_for(lambda: sleeping_child(group), 30, "the child the step started")

            os.kill(holder.process.pid, signal.SIGKILL)  # the worker only, as `kill -9 PID`
            holder.process.wait()
            assert child in stale_runs.group_survivors(group)
            assert stale_runs.release_dead_runs(instance) == []
            assert slot_holders(instance) == [run.run_id]

            holder.kill()  # the rest of its process group: the child is gone too
            # SIGKILL reaches the child asynchronously; under load it can still be alive
            # for a moment after killpg returns (seen once in a parallel `make test`).
            wait_for(lambda: not stale_runs.group_survivors(group), 30, "the child to die")
            released = stale_runs.release_dead_runs(instance)
            assert [d.run_id for d in released] == [run.run_id]
            assert slot_holders(instance) == []
    finally:
        holder.kill()


@pytest.mark.timeout(300)
def test_a_run_waits_behind_a_live_holder_and_proceeds_when_the_holder_dies(tmp_path, home):
    first = Holder(tmp_path, home, "first_writer")
    second = None
    try:
        with dg.DagsterInstance.get() as instance, stale_runs.watch_for_dead_runs(0.5) as watch:
            run = wait_for(lambda: first.run(instance), 120, "the first run")
            wait_for(lambda: run.run_id in slot_holders(instance), 60, "the first run's slot")
            second = Holder(tmp_path, home, "second_writer")
            queued = wait_for(lambda: second.run(instance), 120, "the second run")
            wait_for(lambda: queued.run_id in pending(instance), 60, "the second run to queue")

            rounds = watch.rounds
            wait_for(lambda: watch.rounds >= rounds + 3, 30, "three rounds of the watcher")
            assert slot_holders(instance) == [run.run_id] and watch.released == []
            assert instance.get_run_by_id(queued.run_id).status == dg.DagsterRunStatus.STARTED

            first.kill()
            wait_for(lambda: queued.run_id in slot_holders(instance), 60, "the second's turn")
            second.process.communicate(b"done\n", timeout=60)

        assert second.process.returncode == 0
        assert [d.run_id for d in watch.released] == [run.run_id]
        assert instance.get_run_by_id(queued.run_id).status == dg.DagsterRunStatus.SUCCESS
    finally:
        first.kill()
        if second is not None:
            second.kill()


def test_a_zombie_or_a_pid_given_to_a_newer_process_counts_as_dead():
    before = time.time() - 5
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        assert stale_runs.process_is_alive(sleeper.pid)
        assert stale_runs.process_is_alive(sleeper.pid, started_by=time.time())
        # The pid now belongs to a process younger than the run that recorded it.
        assert not stale_runs.process_is_alive(sleeper.pid, started_by=before)
        sleeper.kill()
        wait_for(lambda: not stale_runs.process_is_alive(sleeper.pid), 10, "the zombie")
        os.kill(sleeper.pid, 0)  # still in the process table: a zombie, not yet reaped
    finally:
        sleeper.kill()
        sleeper.wait()
