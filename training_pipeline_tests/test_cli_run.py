"""`training-pipeline run`, as `make run` calls it, on a temporary data directory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from training_pipeline.settings import DEFAULT_API_HOST, DEFAULT_API_PORT

REPO = Path(__file__).parents[1]


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) != 0


@pytest.mark.e2e
def test_run_serves_the_demo_api_itself_materializes_everything_and_summarizes(tmp_path):
    if not port_is_free(DEFAULT_API_HOST, DEFAULT_API_PORT):
        pytest.skip(f"port {DEFAULT_API_PORT} is taken, so `run` cannot serve the demo API")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster_home" / "dagster.yaml").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINING_PIPELINE_")}
    env |= {"TRAINING_PIPELINE_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(home)}
    cli = str(Path(sys.executable).parent / "training-pipeline")

    subprocess.run([cli, "demo", "--days", "14", "--customers", "80"], env=env, check=True)
    run = subprocess.run([cli, "run"], env=env, capture_output=True, text=True, timeout=600)

    assert run.returncode == 0, run.stdout + run.stderr
    summary = run.stdout
    assert ": succeeded" in summary
    assert "asset checks:" in summary and ", 0 failed" in summary
    assert f"warehouse: {tmp_path / 'data' / 'warehouse.duckdb'}" in summary
    counts = dict(line.split() for line in summary.splitlines() if line.startswith("  marts."))
    assert set(counts) == {"marts.customers", "marts.orders", "marts.tickets"}
    assert all(int(n.replace(",", "")) > 0 for n in counts.values())
    assert port_is_free(DEFAULT_API_HOST, DEFAULT_API_PORT), "the demo API was left running"
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (recorded,) = instance.get_runs()
        assert recorded.job_name == "materialize_everything"
        assert recorded.is_success
