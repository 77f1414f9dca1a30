"""`--cpu-report N`: the N test modules that cost the most CPU, printed after the run.

`make test` is bounded by CPU, not by waiting: on 2 cores, three xdist workers keep both
busy nearly all the time, so the suite's wall time follows its CPU seconds, and
``--durations`` (wall time, stretched by whatever ran beside a test) cannot say which
module to make cheaper.  Each phase of each test (setup, call, teardown) is charged the
CPU its process used during it, plus the CPU of the child processes reaped in it (dbt,
the CLI, Dagster runs, the daemon stopped in a fixture's teardown), and the xdist
controller adds them up per module:

    make test PYTEST_ADDOPTS="--cpu-report 25"

The table ends with the machine's yardstick (``churn_demo.benchmark.measure.YARDSTICK``,
loading the definitions), as the same suite costs up to three times more CPU on one
2-vCPU VM than on another.

A module-scoped fixture is charged to the test that sets it up or tears it down.  Not
charged: processes that outlive the process that started them (their parent exited
first, so nobody reaps them) and the workers' own start and collection.
"""

from __future__ import annotations

import resource
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pytest

PROPERTY = "cpu_seconds"  # (own, children) on a report's user_properties


@dataclass
class ModuleCost:
    module: str
    tests: int = 0
    wall: float = 0.0
    own: float = 0.0
    children: float = 0.0

    @property
    def cpu(self) -> float:
        return self.own + self.children


def cpu_now() -> tuple[float, float]:
    """CPU seconds (user and system) of this process and of its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def costs_by_module(reports: Iterable[tuple[str, str, float, float, float]]) -> list[ModuleCost]:
    """(nodeid, phase, wall, own CPU, children's CPU) per phase, summed per module,
    the costliest first; a test is counted once, at its call phase."""
    modules: dict[str, ModuleCost] = {}
    for nodeid, phase, wall, own, children in reports:
        module = modules.setdefault(module_of(nodeid), ModuleCost(module_of(nodeid)))
        module.tests += phase == "call"
        module.wall += wall
        module.own += own
        module.children += children
    return sorted(modules.values(), key=lambda m: m.cpu, reverse=True)


def table(costs: list[ModuleCost], rows: int) -> Iterator[str]:
    total = sum(m.cpu for m in costs)
    yield f"{'CPU s':>8} {'share':>6} {'own':>8} {'children':>8} {'wall s':>8} {'tests':>5}  module"
    for m in costs[:rows]:
        share = m.cpu / total if total else 0.0
        yield (
            f"{m.cpu:8.1f} {share:6.1%} {m.own:8.1f} {m.children:8.1f} {m.wall:8.1f} "
            f"{m.tests:5d}  {m.module}"
        )
    yield f"{total:8.1f} in all, over {len(costs)} modules"


class CpuReport:
    """Measures in the processes that run tests; adds up where the reports arrive."""

    def __init__(self) -> None:
        self.last = cpu_now()
        self.phases: list[tuple[str, str, float, float, float]] = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self) -> None:
        self.last = cpu_now()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> Iterator:
        outcome = yield
        report = outcome.get_result()
        now = cpu_now()
        used = (now[0] - self.last[0], now[1] - self.last[1])
        self.last = now
        # A new list: the report's is the item's own, shared by the test's three phases.
        report.user_properties = [*report.user_properties, (PROPERTY, used)]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == PROPERTY:
                own, children = value
                self.phases.append((report.nodeid, report.when, report.duration, own, children))

    def pytest_terminal_summary(self, terminalreporter, config: pytest.Config) -> None:
        if hasattr(config, "workerinput"):
            return  # an xdist worker: the controller reports
        rows = config.getoption("cpu_report")
        terminalreporter.write_sep("=", f"CPU per test module (the {rows} costliest)")
        for line in table(costs_by_module(self.phases), rows):
            terminalreporter.write_line(line)
        terminalreporter.write_line(yardstick_line())


def yardstick_line() -> str:
    """The machine's yardstick, taken after the run, when nothing else runs beside it."""
    from churn_demo.benchmark import measure

    cost = measure.yardstick()
    return (
        f"yardstick: `{measure.YARDSTICK}` took {cost.cpu_s:.1f} CPU s in a fresh "
        "interpreter here (figures from two machines compare through it)"
    )


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--cpu-report",
        type=int,
        default=0,
        metavar="N",
        help="after the run, the N test modules that used the most CPU, children included",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("cpu_report") > 0:
        config.pluginmanager.register(CpuReport(), "cpu_report_collector")
