"""Where a run's time goes, from the records Dagster and dbt keep.

Fixed costs are what a run pays whatever the data: starting the interpreter and loading
the definitions, the gaps of the run outside any step (instance, pools, run launch, the
summary), the dbt step's time before dbt starts and dbt's parse (from dbt's own log).
Everything else is step work.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import dagster as dg

_STEP_ENDS = (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE)
_RUN_EVENTS = (
    dg.DagsterEventType.RUN_START,
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.RUN_FAILURE,
)


@dataclass(frozen=True)
class RunAnatomy:
    run_wall_s: float  # the run's start to its end, by the instance's records
    step_started: dict[str, float]  # epoch seconds
    step_s: dict[str, float]  # each step's start to its end


@dataclass(frozen=True)
class DbtInvocation:
    started_at: datetime
    parse_s: float  # dbt's first log line to "Found N models, ..."


def run_anatomy(instance: dg.DagsterInstance, run_id: str) -> RunAnatomy:
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}
    run_times: list[float] = []
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = record.timestamp
        elif event.event_type in _STEP_ENDS:
            ends[event.step_key] = record.timestamp
        elif event.event_type in _RUN_EVENTS:
            run_times.append(record.timestamp)
    steps = {key: ends[key] - starts[key] for key in starts if key in ends}
    return RunAnatomy(max(run_times) - min(run_times), starts, steps)


def dbt_invocations(log: Path) -> list[DbtInvocation]:
    """Every dbt invocation recorded in a dbt log file (JSON lines), in order."""
    found = []
    started: datetime | None = None
    for line in log.read_text().splitlines():
        if not line.startswith("{"):
            continue
        info = json.loads(line)["info"]
        at = datetime.fromisoformat(info["ts"].replace("Z", "+00:00"))
        if info["name"] == "MainReportVersion":
            started = at
        elif info["name"] == "FoundStats" and started is not None:
            found.append(DbtInvocation(started, (at - started).total_seconds()))
            started = None
    return found
