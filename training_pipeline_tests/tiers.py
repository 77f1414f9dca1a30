"""Which commands make a test slow: the fast tier (`make test-fast`) may not start them.

conftest.py fails an unmarked test that starts one of these; see the README's Tests.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

# What the fast tier may not start: a dbt invocation that builds models, a pipeline run
# or the daemon.  `dbt parse`, `compile`, `show` and the dbt unit tests stay fast.
_DBT_BUILDS = {"build", "run", "seed", "snapshot"}
_PIPELINE_RUNS = {"run", "retrain", "ui"}


def slow_command(args: str | Sequence[str]) -> str | None:
    """Why starting ``args`` needs the ``slow`` marker, or None when it does not."""
    words = args.split() if isinstance(args, str) else [os.fspath(a) for a in args]
    names = [Path(word).name for word in words]
    if not names:
        return None
    if names[0] == "dbt" and set(names[1:2]) & _DBT_BUILDS:
        return f"it runs `dbt {names[1]}`"
    if (
        names[0] == "dagster-daemon"
        or "chaos.py" in names[:2]
        or names[:2] == ["churn-demo", "chaos"]
    ):
        return f"it starts {' '.join(names[:2])}"
    if names[0] == "training-pipeline" and names[1:2] and names[1] in _PIPELINE_RUNS:
        return f"it starts `training-pipeline {names[1]}`"
    if names[0] == "dagster" and names[1:3] in (["job", "launch"], ["asset", "materialize"]):
        return f"it starts `dagster {' '.join(names[1:3])}`"
    return None
