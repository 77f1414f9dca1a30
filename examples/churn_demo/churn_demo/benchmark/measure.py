"""Running one path in its own process and reading what it cost, and printing figures.

Each path runs as a child process so its CPU (user + system, its own children such as
dbt included) and its peak resident set come from the kernel's accounting of that child
(``os.wait4``), never from sampling.  Peak RSS is the largest single process of the
tree (Linux keeps the maximum, not the sum), which is what bounds a machine's memory
for these mostly sequential paths.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Cost:
    wall_s: float
    cpu_s: float
    peak_rss_mib: float


@dataclass(frozen=True)
class Measured:
    """One run of one path: its total cost, what it printed, its stages if it has any."""

    total: Cost
    stdout: str
    stages: dict[str, Cost] = field(default_factory=dict)


# Linux carries the RSS high-water mark of the process that forked a child into the
# child's figure, so the child is started by this small launcher (python -S, a few MiB),
# not by the benchmark's own, larger process.
_LAUNCHER = """
import json, os, sys, time
start = time.perf_counter()
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump({"wall_s": time.perf_counter() - start,
               "cpu_s": usage.ru_utime + usage.ru_stime,
               "peak_rss_mib": usage.ru_maxrss / 1024,
               "exit": os.waitstatus_to_exitcode(status)}, out)
"""


def run_measured(
    command: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Measured:
    """Run ``command`` (its first item an absolute path) to the end; raise when it fails."""
    with tempfile.TemporaryDirectory() as scratch:
        figures = Path(scratch) / "cost.json"
        completed = subprocess.run(
            [sys.executable, "-S", "-c", _LAUNCHER, str(figures), *command],
            env=None if env is None else dict(env),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
        cost = json.loads(figures.read_text()) if figures.exists() else {"exit": None}
    if completed.returncode != 0 or cost["exit"] != 0:
        raise RuntimeError(
            f"{' '.join(command)} exited {cost['exit']}:\n{completed.stdout[-4000:]}"
        )
    return Measured(Cost(cost["wall_s"], cost["cpu_s"], cost["peak_rss_mib"]), completed.stdout)


# A machine's yardstick: what every Dagster run, CLI command and code server pays before
# its work.  The same suite or path costs up to three times more CPU on one 2-vCPU VM
# than on another (README, Tests, "Where the time goes"), so figures taken on two
# machines compare only through it.
YARDSTICK = "from training_pipeline.definitions import defs"


def yardstick() -> Cost:
    """``YARDSTICK`` run in a fresh interpreter, measured as every path is."""
    return run_measured([sys.executable, "-c", YARDSTICK]).total


def with_stages(measured: Measured, result_file: Path) -> Measured:
    """Attach the stages a child wrote (``our_path``), plus what no stage accounts for."""
    result = json.loads(result_file.read_text())
    stages = {s["name"]: Cost(s["wall_s"], s["cpu_s"], s["peak_rss_mib"]) for s in result["stages"]}
    stages["start-up, imports, gaps"] = Cost(
        measured.total.wall_s - sum(c.wall_s for c in stages.values()),
        measured.total.cpu_s - sum(c.cpu_s for c in stages.values()),
        0.0,
    )
    return Measured(measured.total, measured.stdout, stages)


def median_cost(costs: Sequence[Cost]) -> Cost:
    return Cost(
        statistics.median(c.wall_s for c in costs),
        statistics.median(c.cpu_s for c in costs),
        statistics.median(c.peak_rss_mib for c in costs),
    )


def cost_row(name: str, cost: Cost) -> str:
    rss = f"{cost.peak_rss_mib:12.0f}" if cost.peak_rss_mib else f"{'':>12}"
    return f"{name:<40}{cost.wall_s:10.2f}{cost.cpu_s:10.2f}{rss}"


HEADER = f"{'path / stage':<40}{'wall s':>10}{'CPU s':>10}{'peak RSS MiB':>13}"


def ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}x" if denominator > 0 else "n/a"
