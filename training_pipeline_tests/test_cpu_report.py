"""`--cpu-report N` (cpu_report.py): CPU per test module, children included."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from churn_demo.benchmark import measure
from cpu_report import costs_by_module, table

# Half a second of CPU, in a child interpreter (`python -c`).
BURN_HALF_A_SECOND = (
    "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass"
)
# A module whose test burns CPU in a child process, and one whose test only sleeps.
BURNS_IN_A_CHILD = f"""
import subprocess, sys

def test_burns_in_a_child():
    subprocess.run([sys.executable, "-c", {BURN_HALF_A_SECOND!r}], check=True)
"""
SLEEPS = """
import time

def test_sleeps():
    time.sleep(0.5)
"""


def test_phases_add_up_per_module_and_the_costliest_comes_first():
    costs = costs_by_module(
        [
            ("a.py::t1", "setup", 0.1, 0.5, 0.0),
            ("a.py::t1", "call", 1.0, 0.25, 0.0),
            ("b.py::t2", "setup", 0.1, 0.0, 0.0),
            ("b.py::t2", "call", 4.0, 1.0, 2.0),
            ("b.py::t3[x]", "call", 1.0, 0.5, 0.0),
            ("b.py::t3[x]", "teardown", 0.5, 0.0, 1.5),
        ]
    )
    assert [(m.module, m.tests, m.cpu) for m in costs] == [("b.py", 2, 5.0), ("a.py", 1, 0.75)]
    assert costs[0].wall == pytest.approx(5.6) and costs[0].children == 3.5


def test_the_table_gives_each_modules_share_and_the_total():
    phases = [("a.py::t", "call", 1.0, 3.0, 0.0), ("b.py::t", "call", 1.0, 1.0, 0.0)]
    lines = list(table(costs_by_module(phases), 1))
    assert "75.0%" in lines[1] and lines[1].endswith("a.py")
    assert len(lines) == 3 and lines[-1].strip() == "4.0 in all, over 2 modules"


def report_rows(output: str) -> dict[str, float]:
    """module -> CPU seconds, from the printed table."""
    rows = re.findall(r"^\s*([\d.]+)\s+[\d.]+%.*\s(test_\w+\.py)$", output, re.MULTILINE)
    return {module: float(cpu) for cpu, module in rows}


def test_a_child_processes_cpu_is_charged_to_its_module_and_a_sleep_costs_none(
    pytester, monkeypatch
):
    # The yardstick's plumbing, on a statement that burns a known amount of CPU.
    monkeypatch.setattr(measure, "YARDSTICK", BURN_HALF_A_SECOND)
    pytester.makepyfile(test_burns=BURNS_IN_A_CHILD, test_sleeps=SLEEPS)
    result = pytester.runpytest("-p", "cpu_report", "--cpu-report", "5")
    result.assert_outcomes(passed=2)
    output = result.stdout.str()
    rows = report_rows(output)
    assert rows["test_burns.py"] >= 0.45 and rows["test_sleeps.py"] < 0.25, rows
    (seconds,) = re.findall(r"took ([\d.]+) CPU s in a fresh interpreter here", output)
    assert f"yardstick: `{BURN_HALF_A_SECOND}` took" in output
    assert 0.45 <= float(seconds) < 5, output


@pytest.mark.integration  # starts xdist workers
def test_under_xdist_the_controller_adds_up_what_the_workers_measured(pytester, monkeypatch):
    here = str(Path(__file__).parent)  # where the plugin is, for the new pytest process
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, (here, os.getenv("PYTHONPATH")))))
    # Only the plugins the run needs: every installed one would load in all three processes.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(test_burns=BURNS_IN_A_CHILD, test_sleeps=SLEEPS)
    result = pytester.runpytest_subprocess(
        *("-p", "xdist.plugin", "-p", "cpu_report", "--cpu-report", "5", "-n", "2")
    )
    result.assert_outcomes(passed=2)
    rows = report_rows(result.stdout.str())
    assert rows["test_burns.py"] >= 0.45 and rows["test_sleeps.py"] < 0.25, rows
