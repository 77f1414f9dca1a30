"""How `make test` spreads the suite over xdist workers (wired up in conftest.py).

A unit of work is a test module: a module that builds a world once (a module-scoped
fixture) runs on one worker, and so do tests sharing a module-level resource.  Only the
modules in ``PER_TEST`` give each test its own unit, because each test there is long;
the modules in ``SHARED_WORLDS`` read one session-scoped world and form one unit.
Tests that must never overlap belong in one module: today only test_cli_run.py binds
the demo API's fixed port 8765; PostgreSQL tests each use a schema or database of their
own; dbt runs write to a target path inside their temporary directory.

xdist's own ``--dist loadgroup`` cannot be used for this: with pytest >= 9.2 the
``xdist_group`` suffix it writes into ``item._nodeid`` is ignored (``nodeid`` is read
from ``item._id``), so every test would become its own unit and module worlds would be
built on several workers.

Units start in collection order (``--no-loadscope-reorder``), and xdist hands each
worker two units at the start, the second waiting behind the first.  So the order is:
one heavy unit per worker, then one light module per worker, then the other heavy
units, then the rest.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from xdist.scheduler import LoadScopeScheduling

SLOW_MARKERS = ("slow", "e2e")
# What `make test-fast` leaves out besides: runs of the asset graph in process, servers
# and processes, and tests that need a service (README, Tests).
OUTSIDE_INNER_LOOP = (*SLOW_MARKERS, "integration", "postgres")
# The longest units first, so that none of them starts when the rest is nearly done
# (CPU seconds per module: `--cpu-report`, README, Tests, "Where the time goes").
HEAVIEST_FIRST = (
    # The daemon scenario in two halves, each on a copy of one starting world, started on
    # two workers at once; first for their wall (the world's bootstrap, then waits on the
    # daemon's 10 s sensors and its runs) and for their CPU (the two costliest modules).
    "test_automation_end_to_end.py",
    "test_automation_pinned.py",
    "test_cluster_e2e.py",  # two Celery workers run the churn graph on the cluster profile
    "test_crash_recovery.py::test_kill_9",
    "test_crash_recovery.py::test_the_chaos_script",
    "test_cli_run.py",
    "test_end_to_end.py",
    "test_warehouse_pool.py",
    "test_incremental_features.py",  # six incremental builds, each against a full rebuild
    "test_dbt_invocation.py",
    "test_features.py",
    "test_incremental_marts.py",
    "test_run_alerts_everywhere.py",
    "test_dbt_project.py",
)
PER_TEST = ("test_crash_recovery.py",)
# Modules that read one session-scoped world run as one unit, so it is built once.
SHARED_WORLDS = {
    "test_model_evidence.py": "churn_world",  # churn_world.py
    "test_reproduce.py": "churn_world",
    "test_training_rows.py": "churn_world",
}


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


class ModuleScheduling(LoadScopeScheduling):
    """xdist's load-by-scope scheduling with a module as the scope (see above)."""

    def _split_scope(self, nodeid: str) -> str:
        module = module_of(nodeid)
        if module.endswith(PER_TEST):
            return nodeid
        return SHARED_WORLDS.get(module.rsplit("/", 1)[-1], module)


def rank(item: pytest.Item) -> int:
    name = item.nodeid.rsplit("/", 1)[-1]
    for position, prefix in enumerate(HEAVIEST_FIRST):
        if name.startswith(prefix):
            return position
    return len(HEAVIEST_FIRST)


def is_light(items: Sequence[pytest.Item]) -> bool:
    return all(
        rank(item) == len(HEAVIEST_FIRST)
        and not any(item.get_closest_marker(marker) for marker in SLOW_MARKERS)
        for item in items
    )


def order(items: list[pytest.Item], workers: int) -> list[pytest.Item]:
    """Heavy units first, with a light module queued behind each of the first ones."""
    items = sorted(items, key=rank)  # stable: the rest keep their order
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(module_of(item.nodeid), []).append(item)
    light = [module for module, its in modules.items() if is_light(its)]
    light.sort(key=lambda module: len(modules[module]))
    fillers = [item for module in light[:workers] for item in modules[module]]
    first = [item for item in items if rank(item) < len(HEAVIEST_FIRST)][:workers]
    taken = {id(item) for item in first + fillers}
    return first + fillers + [item for item in items if id(item) not in taken]
