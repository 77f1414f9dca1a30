"""Shared fixtures: a throw-away data directory, and a dbt manifest parsed once."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from training_pipeline.settings import DBT_PROJECT_DIR, Settings

os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
# Tuning defaults to every core; tests share the machine (and often run beside each
# other), where two spinning OpenMP threads per fit made the gate test 2.4x slower.
os.environ.setdefault("TRAINING_PIPELINE_TUNING_THREADS", "1")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Dagster reads the dbt manifest when definitions are imported, so parse first."""
    dbt = Path(os.environ.get("VIRTUAL_ENV", Path(__file__).parents[1] / ".venv")) / "bin" / "dbt"
    subprocess.run(
        [str(dbt), "parse", "--no-partial-parse", "--profiles-dir", ".", "--quiet"],
        cwd=DBT_PROJECT_DIR,
        check=True,
    )


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings for a fresh data directory; dbt finds it through the same variable."""
    data_dir = tmp_path / "data"
    monkeypatch.setenv("TRAINING_PIPELINE_DATA_DIR", str(data_dir))
    monkeypatch.delenv("TRAINING_PIPELINE_CRM_URL", raising=False)
    monkeypatch.delenv("TRAINING_PIPELINE_API_URL", raising=False)
    # Tests land files and ingest at once; the settle time has its own tests.
    monkeypatch.setenv("TRAINING_PIPELINE_LANDING_SETTLE_S", "0")
    return Settings.from_env()
