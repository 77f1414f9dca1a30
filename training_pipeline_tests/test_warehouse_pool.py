"""Two runs that write the warehouse, launched at once, take turns instead of failing."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from training_pipeline.runner import limit_pools

pytestmark = pytest.mark.slow  # two pipeline runs, each in its own process
REPO = Path(__file__).parents[1]


def seed_sources(data_dir: Path) -> None:
    landing = data_dir / "landing" / "orders"
    landing.mkdir(parents=True)
    for day in range(1, 6):
        rows = "".join(f"O{day}-{i},C{i},2026-01-0{day},1.00,done\n" for i in range(200))
        (landing / f"orders_2026-01-0{day}.csv").write_text(
            "order_id,customer_id,ordered_at,amount,status\n" + rows
        )
    engine = sa.create_engine(f"sqlite:///{data_dir / 'crm.sqlite'}")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "create table customers (record_id integer primary key, customer_id text, "
                "full_name text, email text, age text, country text, segment text, "
                "signup_date text, updated_at timestamp)"
            )
        )
        conn.execute(
            sa.text(
                "insert into customers values (:r, :c, 'A', 'a@x', '30', 'US', 'smb', "
                "'2025-01-01', :u)"
            ),
            [{"r": i, "c": f"C{i}", "u": datetime(2026, 1, 1, 0, i % 60)} for i in range(500)],
        )
    engine.dispose()


def test_two_warehouse_writers_launched_together_both_succeed_one_after_the_other(tmp_path):
    data_dir, home = tmp_path / "data", tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster_home" / "dagster.yaml").read_text())
    seed_sources(data_dir)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        limit_pools(instance)  # as `make run` and `make ui` do before any run
    env = os.environ | {"DAGSTER_HOME": str(home), "TRAINING_PIPELINE_DATA_DIR": str(data_dir)}
    dagster = str(Path(sys.executable).parent / "dagster")
    launches = [
        subprocess.Popen(
            [
                dagster,
                "asset",
                "materialize",
                "-m",
                "training_pipeline.definitions",
                "--select",
                selection,
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for selection in ("raw/orders", "raw/crm_customers")
    ]
    outputs = [p.communicate(timeout=300)[0] for p in launches]
    for process, output in zip(launches, outputs, strict=True):
        assert "Could not set lock" not in output
        assert process.returncode == 0, output

    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert len(runs) == 2
        windows = []
        for run in runs:
            events = instance.all_logs(run.run_id)
            start = min(
                e.timestamp
                for e in events
                if e.dagster_event_type == dg.DagsterEventType.STEP_START
            )
            end = max(
                e.timestamp
                for e in events
                if e.dagster_event_type == dg.DagsterEventType.STEP_SUCCESS
            )
            windows.append((start, end))
    (first_start, first_end), (second_start, second_end) = sorted(windows)
    assert second_start >= first_end, f"steps overlapped: {sorted(windows)}"
