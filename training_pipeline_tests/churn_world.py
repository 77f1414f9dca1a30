"""One churn model trained by its assets, then retrained beside it, for the whole run.

`test_model_evidence.py` looks at what the two runs showed; `test_reproduce.py` rebuilds
the first run's registered version from a copy of the data directory as the first run
left it.  Both read the same world, so it is built once per test process, and
scheduling.py keeps the two modules on one xdist worker (``SHARED_WORLDS``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from training_pipeline.settings import Settings


@dataclass(frozen=True)
class ChurnWorld:
    first_data_dir: Path  # the data directory after the first run (copy it to change it)
    settings: Settings  # the data directory after both runs
    instance: dg.DagsterInstance  # both runs' events
    results: tuple[dg.ExecuteInProcessResult, ...]


@pytest.fixture(scope="session")
def churn_world(tmp_path_factory: pytest.TempPathFactory) -> ChurnWorld:
    """A first model on 20 weekly snapshots, then a retrain on 22 (new data) beside it."""
    from synthetic_churn import churn_snapshots
    from test_gate_in_the_graph import FAST, exported, graph_on

    from training_pipeline.resources import build_resources

    root = tmp_path_factory.mktemp("churn_world")
    data_dir = root / "data"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRAINING_PIPELINE_DATA_DIR", str(data_dir))
        patch.delenv("TRAINING_PIPELINE_CRM_URL", raising=False)
        patch.delenv("TRAINING_PIPELINE_API_URL", raising=False)
        settings = Settings.from_env()
    instance = dg.DagsterInstance.ephemeral()
    results = []
    for snapshots in (20, 22):
        frame = churn_snapshots(n_customers=400, n_snapshots=snapshots, seed=3)
        results.append(
            dg.materialize(
                graph_on(exported(frame, settings)),
                resources=build_resources(settings),
                run_config=FAST,
                instance=instance,
                raise_on_error=False,
            )
        )
        if snapshots == 20:
            shutil.copytree(data_dir, root / "first")
    return ChurnWorld(root / "first", settings, instance, tuple(results))
