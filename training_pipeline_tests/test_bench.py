"""The benchmark runs end to end at a small size and prints every figure it promises.

Timings are not asserted (speed targets are read from the benchmark's output, never from
a timed test); the structure, the measurements being real numbers and the three paths
agreeing on the result are.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from churn_demo.benchmark.measure import run_measured
from churn_demo.benchmark.messy_orders import OrderWorld, write_days

from training_pipeline.settings import REPO_ROOT

pytestmark = pytest.mark.e2e
NUMBER = r"\s+(\d+\.\d+)"


def test_the_benchmark_prints_per_stage_costs_ratios_and_agreement(tmp_path: Path) -> None:
    env = os.environ | {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    command = [sys.executable, str(REPO_ROOT / "scripts" / "bench.py"), "--rows", "2e4"]
    command += ["--repeat", "1", "--days", "3", "--work-dir", str(tmp_path)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "raw -> cleaned marts: 20,000 rows in 3 files" in out
    for row in (
        "ours: total",
        "  ingest: python pre-check",
        "  ingest: duckdb load + bookkeeping",
        "  dbt build",
        "  nulled-value count",
        "duckdb script: total",
        "pandas script: total",
    ):
        match = re.search(re.escape(row) + NUMBER + NUMBER, out)
        assert match, f"no figures for {row!r} in:\n{out}"
        # The byte-level pre-check of two small text files takes under 5 ms, printed as
        # 0.00; every other stage does real work at this size.
        if row != "  ingest: python pre-check":
            assert float(match.group(1)) > 0, row
    assert re.search(r"ratios: ours/duckdb wall \d+\.\d+x, CPU \d+\.\d+x", out)
    assert re.search(r"pandas/ours wall \d+\.\d+x, CPU \d+\.\d+x", out)
    assert "results agree: yes" in out, out


def test_a_child_peak_memory_is_its_own_not_the_benchmarks(tmp_path: Path) -> None:
    # Regression: a child forked from the benchmark inherited the benchmark's RSS
    # high-water mark, so every reference script reported the benchmark's own size.
    ballast = bytearray(300 * 1024 * 1024)  # noqa: F841 - makes this process big
    measured = run_measured(["/bin/true"])
    assert measured.total.peak_rss_mib < 100


def test_generated_rows_total_what_was_asked_and_some_are_redelivered(tmp_path: Path) -> None:
    world = OrderWorld(rows=3000, days=4, seed=1)
    files = write_days(world, range(world.days), tmp_path)
    assert [f.suffix for f in files] == [".csv", ".jsonl", ".parquet", ".csv"]
    ids = duckdb.sql(
        f"select order_id from read_csv('{tmp_path}/*.csv', all_varchar = true) "
        f"union all select order_id from read_json('{tmp_path}/*.jsonl') "
        f"union all select order_id from read_parquet('{tmp_path}/*.parquet')"
    ).fetchall()
    assert len(ids) == world.rows
    redelivered = sum(int(world.rows_on(day) * 0.03) for day in range(1, world.days))
    assert redelivered > 0
    assert len(set(ids)) == world.rows - redelivered
