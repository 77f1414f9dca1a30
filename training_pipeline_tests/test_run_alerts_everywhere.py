"""Every failed run alerts the same way, wherever it was launched, and only once."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from churn_demo.generator import generate

from training_pipeline.alerts import Alert, AlertDestination, alert_log_path, deliver
from training_pipeline.automation.alerts import build_run_failure_sensor
from training_pipeline.automation.failures import (
    FailedRun,
    RecentFailure,
    StepFailure,
    deliver_failed_run,
)
from training_pipeline.settings import REPO_ROOT, Settings


def log_lines(settings: Settings) -> list[dict[str, Any]]:
    path = alert_log_path(settings)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def a_failed_run(run_id: str = "run-1") -> FailedRun:
    return FailedRun(
        job_name="retrain_on_latest_data",
        run_id=run_id,
        failed_at=datetime(2026, 3, 1, tzinfo=UTC),
        failure_message="boom",
        step_failures=(StepFailure("raw_tickets", "TicketsApiError", "the API is down"),),
    )


def test_a_run_already_in_the_alert_log_is_not_alerted_again(settings):
    first = deliver_failed_run(a_failed_run(), settings, RecentFailure())
    second = deliver_failed_run(a_failed_run(), settings, RecentFailure())
    other = deliver_failed_run(a_failed_run("run-2"), settings, RecentFailure())

    assert [alert.kind for alert, _ in first] == ["run_failure"]
    assert second == []
    assert len(other) == 1
    assert [line["run_id"] for line in log_lines(settings)] == ["run-1", "run-2"]


def test_an_alert_of_another_kind_for_the_run_does_not_stop_its_failure_alert(settings):
    """A run that rolled back from an unverified production model alerted that, then failed."""
    rollback = Alert(
        kind="production_failed_verification",
        job_name="retrain_on_latest_data",
        run_id="run-1",
        message="production model v2 failed verification; rolled back to v1",
        timestamp=datetime(2026, 3, 1, tzinfo=UTC),
    )
    deliver(rollback, AlertDestination.of(settings))

    delivered = deliver_failed_run(a_failed_run(), settings, RecentFailure())

    assert [alert.kind for alert, _ in delivered] == ["run_failure"]
    assert [line["kind"] for line in log_lines(settings)] == [
        "production_failed_verification",
        "run_failure",
    ]


def test_a_damaged_log_line_about_the_run_is_reported_not_taken_as_alerted(settings):
    log = alert_log_path(settings)
    log.parent.mkdir(parents=True)
    log.write_text('{"run_id": "run-1", "kin\n')

    with pytest.raises(ValueError, match=r"line 1 of the alert log .* mentions run run-1"):
        deliver_failed_run(a_failed_run(), settings, RecentFailure())
    assert len(deliver_failed_run(a_failed_run("run-2"), settings, RecentFailure())) == 1


def test_two_processes_alerting_the_same_run_at_once_write_one_line(settings):
    """The daemon's sensor and the CLI may both see a CLI run fail at the same moment."""
    barrier = threading.Barrier(8)

    def alert() -> None:
        barrier.wait()
        deliver_failed_run(a_failed_run(), settings, RecentFailure())

    threads = [threading.Thread(target=alert) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(log_lines(settings)) == 1


def a_dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again: nothing listens there


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.mark.e2e
def test_a_failed_cli_run_writes_one_alert_naming_the_run_and_the_failure(settings, dagster_home):
    """Regression: `training-pipeline run` with a dead ticket API wrote no alert line,
    because only the daemon's run-failure sensor alerted and a CLI run has no daemon."""
    generate(settings, days=15, customers=40, seed=3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINING_PIPELINE_")}
    env |= {
        "TRAINING_PIPELINE_DATA_DIR": str(settings.data_dir),
        "TRAINING_PIPELINE_LANDING_SETTLE_S": "0",
        "TRAINING_PIPELINE_API_URL": f"http://127.0.0.1:{a_dead_port()}",
        "DAGSTER_HOME": str(dagster_home),
    }
    cli = str(Path(sys.executable).parent / "training-pipeline")

    run = subprocess.run([cli, "run"], env=env, capture_output=True, text=True, timeout=600)

    assert run.returncode == 1, run.stdout + run.stderr
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        (recorded,) = instance.get_runs()
        (line,) = log_lines(settings)
        assert (line["kind"], line["run_id"], line["step_key"]) == (
            "run_failure",
            recorded.run_id,
            "raw__tickets",
        )
        assert "raw__tickets" in line["message"]
        assert "HttpApiError" in line["error_summary"] and "127.0.0.1" in line["error_summary"]
        assert f"alert: run_failure for run {recorded.run_id}, not_configured" in run.stdout

        # A daemon running beside the CLI sees the same failure: it must not alert again.
        (record,) = instance.get_records_for_run(
            recorded.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
        ).records
        alert_on_run_failure = build_run_failure_sensor(settings)
        context = dg.build_run_status_sensor_context(
            sensor_name=alert_on_run_failure.name,
            dagster_event=record.event_log_entry.dagster_event,
            dagster_instance=instance,
            dagster_run=recorded,
        )
        alert_on_run_failure(context)
    assert len(log_lines(settings)) == 1
