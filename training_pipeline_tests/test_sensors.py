"""Sensors notice new data by content, never re-request what they have seen, and keep
their hands off the warehouse."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg
import pytest

from training_pipeline.automation.policy import RetrainingPolicy
from training_pipeline.automation.sensors import order_files_sensor, source_changes_sensor
from training_pipeline.demo.api_server import DemoApiServer
from training_pipeline.demo.generator import generate
from training_pipeline.ingestion.landing_scan import scan_landing
from training_pipeline.resources import build_resources
from training_pipeline.settings import Settings

HEADER = "order_id,customer_id,ordered_at,amount,status\n"


def land(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + body)
    return path


def test_a_new_file_is_seen_once_and_an_identical_redelivery_not_at_all(tmp_path):
    first = land(tmp_path / "orders_1.csv", "O1,C1,x,1,new\n")
    scan = scan_landing(tmp_path, None)
    assert len(scan.new_content) == 1 and scan.new_content[0].startswith("orders_1.csv@")
    assert scan_landing(tmp_path, scan.cursor).new_content == ()
    copy = tmp_path / "copy.tmp"
    shutil.copy(first, copy)
    os.replace(copy, first)  # same bytes delivered again: new inode and ctime
    assert scan_landing(tmp_path, scan.cursor).new_content == ()


def test_a_corrected_file_and_a_late_file_with_an_old_mtime_are_both_seen(tmp_path):
    path = land(tmp_path / "orders_1.csv", "O1,C1,x,1,new\n")
    cursor = scan_landing(tmp_path, None).cursor
    before = path.stat()
    land(path, "O1,C1,x,2,new\n")  # same size, different content ...
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # ... and the old mtime
    late = land(tmp_path / "orders_0.csv", "O0,C1,x,1,new\n")
    os.utime(late, ns=(0, 0))  # delivered late, stamped 1970
    found = {entry.split("@")[0] for entry in scan_landing(tmp_path, cursor).new_content}
    assert found == {"orders_1.csv", "orders_0.csv"}


def test_the_order_files_sensor_requests_ingestion_once_per_content(settings: Settings):
    resources = {"order_files": build_resources(settings)["order_files"]}
    land(settings.landing_dir / "orders_1.csv", "O1,C1,x,1,new\n")
    with dg.build_sensor_context(resources=resources) as context:
        result = order_files_sensor(context)
    (request,) = result.run_requests
    assert request.asset_selection == [dg.AssetKey(["raw", "orders"])]
    with dg.build_sensor_context(resources=resources, cursor=result.cursor) as context:
        again = order_files_sensor(context)
    assert again.run_requests == [] or again.run_requests is None
    assert "no new" in again.skip_reason.skip_message


def test_source_changes_are_requested_when_the_crm_or_the_ticket_api_moves(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    generate(settings, days=20, customers=300, seed=2)
    with DemoApiServer(settings, port=0) as server:
        monkeypatch.setenv("TRAINING_PIPELINE_API_URL", server.url)
        resources = build_resources(Settings.from_env())
        needed = {k: resources[k] for k in ("crm", "tickets_api")}

        def tick(cursor):
            with dg.build_sensor_context(resources=needed, cursor=cursor) as context:
                return source_changes_sensor(context)

        first = tick(None)
        assert {r.asset_selection[0].path[-1] for r in first.run_requests} == {
            "crm_customers",
            "tickets",
        }
        quiet = tick(first.cursor)
        assert not quiet.run_requests
        assert generate(settings, days=5).crm_records > 0
        later = tick(quiet.cursor)
        assert {r.asset_selection[0].path[-1] for r in later.run_requests} == {
            "crm_customers",
            "tickets",
        }
        assert {r.run_key for r in later.run_requests}.isdisjoint(
            {r.run_key for r in first.run_requests}
        )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("TRAINING_PIPELINE_RETRAIN_POLICY", "weekly", "expected one of"),
        ("TRAINING_PIPELINE_RETRAIN_CRON", "every night", "not a cron string"),
        ("TRAINING_PIPELINE_NIGHTLY_RETRAIN", "maybe", "expected on or off"),
        ("TRAINING_PIPELINE_SENSOR_INTERVAL_S", "0", "must be ≥ 1"),
    ],
)
def test_a_bad_retraining_policy_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable, value, message
):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=message) as raised:
        RetrainingPolicy.from_env()
    assert variable in str(raised.value)


def drift_evaluation(instance: dg.DagsterInstance, passed: bool, severity) -> None:
    """Record one evaluation of the real check key, as the drift check would."""

    @dg.asset(
        key=["features", "customer_snapshots"],
        check_specs=[dg.AssetCheckSpec("feature_drift", asset=["features", "customer_snapshots"])],
    )
    def snapshots():
        return dg.MaterializeResult(
            check_results=[
                dg.AssetCheckResult(
                    passed=passed, severity=severity, metadata={"drifted_share": 0.7}
                )
            ]
        )

    assert dg.materialize([snapshots], instance=instance).success


def test_drift_at_error_requests_one_retraining_and_warnings_request_none():
    from training_pipeline.automation.drift import drift_retraining_sensor

    with dg.instance_for_test() as instance:

        def tick(cursor):
            with dg.build_sensor_context(instance=instance, cursor=cursor) as context:
                return drift_retraining_sensor(context)

        assert not tick(None).run_requests
        drift_evaluation(instance, False, dg.AssetCheckSeverity.WARN)
        warned = tick(None)
        assert not warned.run_requests
        drift_evaluation(instance, False, dg.AssetCheckSeverity.ERROR)
        (request,) = tick(warned.cursor).run_requests
        assert "drift" in request.run_key and "0.7" in request.tags["training_pipeline/trigger"]
        assert not tick(tick(warned.cursor).cursor).run_requests


def test_a_drift_check_that_never_finished_is_waited_for_not_misread():
    # Regression: a planned check's record has no `passed`, which crashed the sensor.
    from training_pipeline.automation.drift import drift_retraining_sensor

    @dg.asset(
        key=["features", "customer_snapshots"],
        check_specs=[dg.AssetCheckSpec("feature_drift", asset=["features", "customer_snapshots"])],
    )
    def snapshots():
        raise RuntimeError("the features step died before the check ran")

    with dg.instance_for_test() as instance:
        assert not dg.materialize([snapshots], instance=instance, raise_on_error=False).success
        with dg.build_sensor_context(instance=instance) as context:
            result = drift_retraining_sensor(context)
    assert not result.run_requests
    assert "not finished" in result.skip_reason.skip_message
