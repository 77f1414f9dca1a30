"""Sensors notice new data by content, never re-request what they have seen, and keep
their hands off the warehouse."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from churn_demo.api_server import DemoApiServer
from churn_demo.declared import orders_landing
from churn_demo.generator import generate
from declared_sources import resources_with_sources

from training_pipeline.automation.model_automation import retrain_on_drift
from training_pipeline.automation.policy import RetrainingPolicy
from training_pipeline.automation.sensors import (
    SensorCursor,
    build_new_data_sensor,
    plan_ingestion,
)
from training_pipeline.components import COMPONENT_TYPES
from training_pipeline.components.loader import load_project
from training_pipeline.components.sources import declared_sources
from training_pipeline.ingestion.landing_scan import scan_landing
from training_pipeline.resources import AlertsResource
from training_pipeline.settings import Settings
from training_pipeline.spec.sources import Source, SourceSystem
from training_pipeline_tests.http_source_helpers import tickets_resources

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


def sensor_tick(resources: dict, cursor: str | None) -> dg.SensorResult:
    sensor = build_new_data_sensor(RetrainingPolicy(), resources["declared"])
    wanted = {k: v for k, v in resources.items() if k != "declared"}
    with dg.build_sensor_context(
        resources=wanted, cursor=cursor, instance=dg.DagsterInstance.ephemeral()
    ) as context:
        return sensor(context)


def requested(result: dg.SensorResult) -> set[str]:
    (request,) = result.run_requests
    return {key.path[-1] for key in request.asset_selection}


@pytest.fixture
def live_sources(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    generate(settings, days=20, customers=300, seed=2)
    with DemoApiServer(settings, port=0) as server:
        monkeypatch.setenv("TRAINING_PIPELINE_API_URL", server.url)
        configured = Settings.from_env()
        resources = resources_with_sources(configured)
        # Every declared source's resource: the sensor probes each one.
        wanted = {k: v for k, v in resources.items() if k.startswith("source__")}
        wanted["row_contract"] = resources["row_contract"]
        declared = declared_sources(load_project(configured, COMPONENT_TYPES))
        yield wanted | tickets_resources() | {"declared": declared}


def test_everything_new_is_requested_in_one_run_and_nothing_twice(settings, live_sources):
    first = sensor_tick(live_sources, None)
    assert requested(first) == {"orders", "crm_customers", "tickets"}
    quiet = sensor_tick(live_sources, first.cursor)
    assert not quiet.run_requests
    assert "nothing new in the declared sources" in quiet.skip_reason.skip_message

    assert generate(settings, days=2).crm_records > 0
    later = sensor_tick(live_sources, quiet.cursor)
    assert requested(later) == {"orders", "crm_customers", "tickets"}
    assert later.run_requests[0].run_key != first.run_requests[0].run_key


def test_an_identical_redelivery_launches_nothing_and_a_corrected_one_is_requested(
    settings, live_sources
):
    seen = sensor_tick(live_sources, None).cursor
    path = sorted(orders_landing(settings).iterdir())[-1]
    body = path.read_bytes()
    copy = path.with_name(".redelivery.tmp")
    copy.write_bytes(body)
    os.replace(copy, path)  # the same bytes delivered again: new inode and ctime
    assert not sensor_tick(live_sources, seen).run_requests

    corrected = path.with_name(".corrected.tmp")
    corrected.write_bytes(body + body[-40:])
    os.replace(corrected, path)
    result = sensor_tick(live_sources, seen)
    assert requested(result) == {"orders"}


def test_an_unreadable_source_holds_back_only_itself(settings, live_sources):
    seen = sensor_tick(live_sources, None).cursor
    assert generate(settings, days=3).crm_records > 0
    down = tickets_resources("http://127.0.0.1:9", retry={"attempts": 1, "timeout_s": 2})
    broken = live_sources | down
    result = sensor_tick(broken, seen)
    assert requested(result) == {"orders", "crm_customers"}
    # The ticket changes are still new on the next look, once the API answers again.
    assert requested(sensor_tick(live_sources, result.cursor)) == {"tickets"}


def declared(kind: str, name: str, **fields) -> Source:
    spec = {
        "name": name,
        "kind": kind,
        "contract": {"columns": ["id", "at"], "primary_key": ["id"]},
        **fields,
    }
    return SourceSystem.model_validate({"system": "s", "sources": [spec]}).sources[0]


FILES = declared("files", "flights")
SQL = declared("sql_table", "airports", url_env="AIRPORTS_URL", table="airports")
HTTP = declared("http_api", "delays", base_url_env="DELAYS_URL", endpoint="/delays")


def test_the_run_key_names_what_changed_and_nothing_else():
    plan = plan_ingestion([(FILES, ("flights:a.csv@abc",)), (SQL, ())])
    assert plan.assets == (dg.AssetKey(["raw", "flights"]),)
    assert plan_ingestion([(FILES, ("flights:a.csv@abc",))]).run_key == plan.run_key
    assert plan_ingestion([(FILES, ("flights:a.csv@abd",))]).run_key != plan.run_key
    assert plan_ingestion([(FILES, ()), (SQL, ())]).assets == ()


def test_a_version_2_cursor_round_trips_by_source_name():
    cursor = SensorCursor({"flights": "scan", "airports": "2026-01-01 00:00:00", "delays": None})
    assert SensorCursor.parse(cursor.dump(), [FILES, SQL, HTTP]).sources == cursor.sources


def test_a_version_1_cursor_starts_empty_and_says_why():
    """Its entries were named after one example's fixed sources, not declared ones."""
    old = '{"files": "scan", "crm": "2026-01-01 00:00:00", "tickets": null}'
    cursor = SensorCursor.parse(old, [FILES, SQL, HTTP])
    assert cursor.sources == {}
    assert cursor.converted_from == (
        "a version-1 cursor was dropped: every declared source (3) is probed afresh"
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


# The churn model's feature drift check, as examples/defs/churn/model/defs.yaml declares it.
DRIFT_CHECK = dg.AssetCheckKey(
    dg.AssetKey(["features", "customer_snapshots"]), "churn_feature_drift"
)


def drift_evaluation(
    instance: dg.DagsterInstance, passed: bool, severity, data: str = "rows-1"
) -> None:
    """Record one evaluation of the real check key, as the drift check would, on the
    rows fingerprinted ``data``."""

    @dg.asset(
        key=["features", "customer_snapshots"],
        check_specs=[
            dg.AssetCheckSpec("churn_feature_drift", asset=["features", "customer_snapshots"])
        ],
    )
    def snapshots():
        return dg.MaterializeResult(
            check_results=[
                dg.AssetCheckResult(
                    passed=passed,
                    severity=severity,
                    metadata={"drifted_share": 0.7, "drift_data": data, "production_model": "v1"},
                )
            ]
        )

    assert dg.materialize([snapshots], instance=instance).success


def alerts_resource(tmp_path: Path) -> AlertsResource:
    return AlertsResource(
        log_path=str(tmp_path / "alerts.jsonl"), webhook_url=None, ui_url="http://ui"
    )


def drift_tick(instance, cursor, tmp_path: Path, cooldown_s: float = 0.0) -> dg.SensorResult:
    with dg.build_sensor_context(instance=instance, cursor=cursor) as context:
        return retrain_on_drift(
            "churn", DRIFT_CHECK, cooldown_s, context, alerts_resource(tmp_path)
        )


@pytest.mark.integration
def test_drift_at_error_requests_one_retraining_and_warnings_request_none(tmp_path):

    with dg.instance_for_test() as instance:

        def tick(cursor):
            return drift_tick(instance, cursor, tmp_path)

        assert not tick(None).run_requests
        drift_evaluation(instance, False, dg.AssetCheckSeverity.WARN)
        warned = tick(None)
        assert not warned.run_requests
        drift_evaluation(instance, False, dg.AssetCheckSeverity.ERROR)
        (request,) = tick(warned.cursor).run_requests
        assert "drift" in request.run_key and "0.7" in request.tags["training_pipeline/trigger"]
        assert not tick(tick(warned.cursor).cursor).run_requests


@pytest.mark.integration
def test_persisting_drift_retrains_once_per_episode_and_again_only_on_new_data(tmp_path):
    # Regression: every features refresh under lasting drift retrained, twice on the same
    # rows.
    with dg.instance_for_test() as instance:
        drift_evaluation(instance, False, dg.AssetCheckSeverity.ERROR, data="day-1")
        first = drift_tick(instance, None, tmp_path)
        assert len(first.run_requests) == 1
        drift_evaluation(instance, False, dg.AssetCheckSeverity.ERROR, data="day-1")
        same_rows = drift_tick(instance, first.cursor, tmp_path)
        assert not same_rows.run_requests
        assert "waiting for new data" in same_rows.skip_reason.skip_message

        drift_evaluation(instance, False, dg.AssetCheckSeverity.ERROR, data="day-2")
        cooling = drift_tick(instance, same_rows.cursor, tmp_path, cooldown_s=3600)
        assert not cooling.run_requests and "cool-down" in cooling.skip_reason.skip_message
        (request,) = drift_tick(instance, same_rows.cursor, tmp_path).run_requests

    launched = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert [a["kind"] for a in launched] == ["retrain_launched", "retrain_launched"]
    assert launched[1]["details"]["run_key"] == request.run_key


@pytest.mark.integration
def test_a_cursor_of_an_earlier_release_is_read_as_the_last_evaluation_looked_at(tmp_path):
    with dg.instance_for_test() as instance:
        drift_evaluation(instance, False, dg.AssetCheckSeverity.ERROR)
        seen = drift_tick(instance, None, tmp_path).cursor
        evaluation = json.loads(seen)["evaluation"]

        assert not drift_tick(instance, str(evaluation), tmp_path).run_requests
        assert drift_tick(instance, str(evaluation - 1), tmp_path).run_requests


@pytest.mark.integration
def test_a_drift_check_that_never_finished_is_waited_for_not_misread(tmp_path):
    # Regression: a planned check's record has no `passed`, which crashed the sensor.

    @dg.asset(
        key=["features", "customer_snapshots"],
        check_specs=[
            dg.AssetCheckSpec("churn_feature_drift", asset=["features", "customer_snapshots"])
        ],
    )
    def snapshots():
        raise RuntimeError("the features step died before the check ran")

    with dg.instance_for_test() as instance:
        assert not dg.materialize([snapshots], instance=instance, raise_on_error=False).success
        result = drift_tick(instance, None, tmp_path)
    assert not result.run_requests
    assert "not finished" in result.skip_reason.skip_message
