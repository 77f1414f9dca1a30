"""Alerts: the webhook against a real receiver on loopback, the JSONL log, and the sensor
evaluated on runs that really failed in Dagster."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dagster as dg
import pytest

from training_pipeline.alerts import (
    Alert,
    AlertDeliveryError,
    AlertDestination,
    DeliveryOutcome,
    alert_log_path,
    deliver,
    post_webhook,
    write_alert_log,
)
from training_pipeline.automation import alerts as sensor_module
from training_pipeline.automation.alerts import RecentFailure, build_run_failure_sensor
from training_pipeline.automation.failures import (
    CHECK_FAILED_ERROR,
    CheckEvaluation,
    FailedRun,
    StepFailure,
    classify_failed_run,
)
from training_pipeline.settings import Settings

SECRET = "T0SECRET/B0SECRET/xoxb-do-not-leak"
AT = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
FAST = {"backoff_s": 0.01}


@dataclass
class Reply:
    status: int = 200
    delay_s: float = 0.0
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)


class Receiver:
    """A Slack-like webhook on 127.0.0.1: answers from a script, then 200 ``ok``."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.bodies: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                reply = receiver.script.pop(0) if receiver.script else Reply()
                time.sleep(reply.delay_s)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(reply.body.encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and went away: what a slow receiver tests

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/services/{SECRET}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    running.thread.start()
    yield running
    running.server.shutdown()
    running.server.server_close()


@pytest.fixture(autouse=True)
def fresh_webhook_health(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with a webhook that has not failed recently."""
    monkeypatch.setattr(sensor_module, "webhook_health", RecentFailure())


def an_alert(**changes: Any) -> Alert:
    fields = {
        "kind": "run_failure",
        "job_name": "retrain_on_latest_data",
        "run_id": "0d5f8c1e-run",
        "message": "Step `raw_orders` failed.",
        "timestamp": AT,
        "error_summary": "ValueError: kaboom",
        "step_key": "raw_orders",
    }
    return Alert(**(fields | changes))


def log_lines(settings: Settings) -> list[dict[str, Any]]:
    path = alert_log_path(settings)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def assert_slack_compatible(body: dict[str, Any]) -> None:
    """The shape Slack incoming webhooks accept: fallback text and Block Kit blocks."""
    assert set(body) == {"text", "blocks"}
    assert isinstance(body["text"], str) and body["text"].strip()
    assert len(body["blocks"]) in range(1, 51)  # Slack takes 1 to 50 blocks
    for block in body["blocks"]:
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text"
            assert 0 < len(block["text"]["text"]) <= 150
        elif block["type"] == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                assert block["text"]["type"] in {"mrkdwn", "plain_text"}
                assert 0 < len(block["text"]["text"]) <= 3000
            assert 0 < len(block.get("fields", [None])) <= 10
            for item in block.get("fields", []):
                assert item["type"] == "mrkdwn" and 0 < len(item["text"]) <= 2000
        elif block["type"] == "context":
            assert len(block["elements"]) in range(1, 11)  # and 1 to 10 elements
            assert all(e["type"] in {"mrkdwn", "plain_text"} for e in block["elements"])
        else:
            pytest.fail(f"unexpected block type {block['type']}")


# --- the webhook against a real receiver ------------------------------------------------


def test_the_webhook_body_is_slack_compatible_and_names_the_job_and_the_run(receiver):
    alert = an_alert(message="AUC 0.61 < floor 0.75 & worse than champion")
    assert post_webhook(alert, receiver.url, ui_url="http://dagster.local:3000") == 1

    (body,) = receiver.bodies
    assert_slack_compatible(body)
    assert "retrain_on_latest_data" in body["text"] and "0d5f8c1e-run" in body["text"]
    rendered = json.dumps(body)
    assert "http://dagster.local:3000/runs/0d5f8c1e-run" in rendered
    assert "ValueError: kaboom" in rendered
    assert "0.61 &lt; floor 0.75 &amp; worse" in rendered  # mrkdwn control characters escaped


def test_a_500_is_retried_and_the_alert_is_then_delivered(receiver):
    receiver.script.append(Reply(status=500))
    assert post_webhook(an_alert(), receiver.url, **FAST) == 2
    assert len(receiver.bodies) == 2 and receiver.bodies[0] == receiver.bodies[1]


def test_a_receiver_slower_than_the_timeout_is_retried(receiver):
    receiver.script.append(Reply(delay_s=1.0))
    assert post_webhook(an_alert(), receiver.url, timeout_s=0.2, **FAST) == 2


def test_a_429_is_retried_after_the_delay_the_receiver_asks_for(receiver):
    receiver.script.append(Reply(status=429, headers={"Retry-After": "2"}))
    slept: list[float] = []
    assert post_webhook(an_alert(), receiver.url, sleep=slept.append) == 2
    assert slept == [2.0]


def test_a_rejected_webhook_is_not_retried_and_the_error_shows_the_url_masked(receiver):
    receiver.script.append(Reply(status=404, body="no_service"))
    with pytest.raises(AlertDeliveryError) as raised:
        post_webhook(an_alert(), receiver.url, **FAST)
    message = str(raised.value)
    assert len(receiver.bodies) == 1 and raised.value.attempts == 1
    assert "HTTP 404" in message and "no_service" in message
    assert SECRET not in message and "/services" not in message


def to_webhook(settings: Settings, url: str) -> AlertDestination:
    return AlertDestination.of(replace(settings, webhook_url=url))


def test_a_receiver_that_keeps_failing_gives_a_clear_masked_error_recorded_in_the_log(
    receiver, settings
):
    receiver.script.extend([Reply(status=503)] * 4)
    port = receiver.server.server_address[1]
    outcome = deliver(an_alert(), to_webhook(settings, receiver.url), **FAST)

    assert outcome.status == "failed" and outcome.attempts == 4
    assert outcome.error is not None
    assert f"alert webhook http://127.0.0.1:{port}/*** " in outcome.error
    assert "after 4 attempt(s)" in outcome.error and "HTTP 503" in outcome.error
    assert SECRET not in outcome.error
    (line,) = log_lines(settings)
    assert line["delivery"] == "failed" and line["delivery_error"] == outcome.error
    assert line["kind"] == "run_failure" and line["run_id"] == "0d5f8c1e-run"


def test_without_a_webhook_url_only_the_log_line_is_written(receiver, settings):
    outcome = deliver(an_alert(), AlertDestination.of(settings))
    assert outcome.status == "not_configured"
    assert receiver.bodies == []
    (line,) = log_lines(settings)
    assert line["link_path"] == "/runs/0d5f8c1e-run"
    assert line["timestamp"] == "2026-03-01T12:00:00+00:00"
    assert line["delivery"] == "not_configured" and line["delivery_error"] is None


def test_the_secret_url_never_appears_in_the_alert_log_nor_in_httpx_request_logs(
    receiver, settings, caplog
):
    caplog.set_level(logging.INFO, logger="httpx")
    destination = to_webhook(settings, receiver.url)
    assert deliver(an_alert(), destination, **FAST).status == "posted"
    receiver.script.extend([Reply(status=500)] * 2)
    assert deliver(an_alert(), destination, max_attempts=2, **FAST).status == "failed"

    text = alert_log_path(settings).read_text()
    assert len(text.splitlines()) == 2 and SECRET not in text
    requests = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert len(requests) == 3 and all("/***" in message for message in requests)
    assert not any(SECRET in message for message in requests)


def test_log_lines_from_concurrent_writers_never_interleave(tmp_path):
    path = tmp_path / "alerts" / "alerts.jsonl"
    long_alert = an_alert(error_summary="x" * 20_000)

    def write_many() -> None:
        for _ in range(50):
            write_alert_log(long_alert, path)

    writers = [threading.Thread(target=write_many) for _ in range(4)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    lines = path.read_text().splitlines()
    assert len(lines) == 200
    assert all(json.loads(line)["error_summary"] == "x" * 20_000 for line in lines)


# --- why a run failed: the rules on hand-made runs --------------------------------------


def a_failed_run(**changes: Any) -> FailedRun:
    fields = {
        "job_name": "churn__retrain",
        "run_id": "r1",
        "failed_at": AT,
        "failure_message": 'Execution of run for "churn__retrain" failed.',
    }
    return FailedRun(**(fields | changes))


GATE_FAILED = CheckEvaluation(
    asset_key="churn/validation",
    check_name="passes_gate",
    passed=False,
    blocking=True,
    severity="ERROR",
    step_key="churn__validation",
    metadata={"challenger_auc": 0.61, "champion_auc": 0.87},
)
GATE_STEP = StepFailure("churn__validation", CHECK_FAILED_ERROR, "1 blocking check failed")


def test_a_failed_blocking_check_gives_one_alert_naming_the_check_not_also_a_step_failure():
    (alert,) = classify_failed_run(
        a_failed_run(check_evaluations=(GATE_FAILED,), step_failures=(GATE_STEP,))
    )
    assert alert.kind == "blocking_check_failed"
    assert (alert.asset_key, alert.check_name) == ("churn/validation", "passes_gate")
    assert "challenger_auc: 0.61" in alert.error_summary


def test_a_blocking_check_that_failed_while_another_step_failed_gives_an_alert_for_each():
    other = StepFailure("raw_tickets", "TicketsApiError", "TicketsApiError: HTTP 503")
    alerts = classify_failed_run(
        a_failed_run(check_evaluations=(GATE_FAILED,), step_failures=(GATE_STEP, other))
    )
    assert [(a.kind, a.step_key) for a in alerts] == [
        ("blocking_check_failed", "churn__validation"),
        ("run_failure", "raw_tickets"),
    ]


def test_failed_checks_that_do_not_block_are_not_reported_as_blocking():
    warn = CheckEvaluation("raw_orders", "no_quarantined_files", False, True, "WARN")
    advisory = CheckEvaluation("raw_orders", "rows_reconcile", False, False, "ERROR")
    step = StepFailure("raw_orders", "ValueError", "ValueError: kaboom")
    alerts = classify_failed_run(
        a_failed_run(check_evaluations=(warn, advisory), step_failures=(step,))
    )
    assert [a.kind for a in alerts] == ["run_failure"]


def test_a_deployment_that_could_not_restore_the_previous_model_says_production_is_empty():
    metadata = {"rolled_back": False, "withdrawn": True, "production": "(none)"}
    step = StepFailure("production_model", "Failure", "Failure: deployment failed", metadata)
    (alert,) = classify_failed_run(a_failed_run(step_failures=(step,)))
    assert alert.kind == "automatic_rollback" and "production is now EMPTY" in alert.message


def test_a_run_that_failed_without_a_failed_step_still_gives_one_alert():
    run = a_failed_run(failure_message="Run worker crashed", failure_summary="SIGKILL")
    (alert,) = classify_failed_run(run)
    assert alert.kind == "run_failure" and alert.message == "Run worker crashed"
    assert alert.error_summary == "SIGKILL" and alert.step_key is None


def test_after_a_failed_post_later_alerts_get_a_single_attempt_until_the_window_passes():
    health = RecentFailure(window_s=0.2)
    assert health.attempts() == 4
    health.record(DeliveryOutcome("posted", 1))
    assert health.attempts() == 4
    health.record(DeliveryOutcome("failed", 4, "HTTP 503"))
    assert health.attempts() == 1
    time.sleep(0.25)
    assert health.attempts() == 4


# --- the sensor on runs that really failed in Dagster -----------------------------------


@dg.asset
def flaky_source() -> None:
    raise ValueError("the source went away")


@dg.asset(check_specs=[dg.AssetCheckSpec("passes_gate", asset="gated", blocking=True)])
def gated() -> dg.MaterializeResult:
    return dg.MaterializeResult(
        check_results=[dg.AssetCheckResult(passed=False, metadata={"challenger_auc": 0.61})]
    )


@dg.asset(deps=[gated])
def promoted() -> None:
    """Must never run: the blocking check upstream failed."""


@dg.asset
def production_model() -> None:
    raise dg.Failure(
        description="deployment of v2 failed and was undone: probabilities are NaN",
        metadata={"production": "v1", "rolled_back": True, "withdrawn": False},
    )


defs = dg.Definitions(
    assets=[flaky_source, gated, promoted, production_model],
    jobs=[
        dg.define_asset_job("ingest", [flaky_source]),
        dg.define_asset_job("gate", [gated, promoted]),
        dg.define_asset_job("deploy", [production_model]),
    ],
)


def run_job(name: str, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def(name)
    return job.execute_in_process(instance=instance, raise_on_error=False)


def evaluate_sensor_on(
    result: dg.ExecuteInProcessResult, instance: dg.DagsterInstance, settings: Settings
) -> None:
    alert_on_run_failure = build_run_failure_sensor(settings)
    context = dg.build_run_status_sensor_context(
        sensor_name=alert_on_run_failure.name,
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
    )
    alert_on_run_failure(context)


@pytest.mark.integration
def test_in_dagster_1_13_a_failed_blocking_check_fails_its_step_and_so_the_run():
    instance = dg.DagsterInstance.ephemeral()
    result = run_job("gate", instance)
    assert not result.success
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.blocking
    (failure,) = result.get_step_failure_events()
    assert failure.step_key == "gated"
    assert failure.event_specific_data.error.cls_name == CHECK_FAILED_ERROR
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == {dg.AssetKey("gated")}  # recorded before the check; `promoted` never ran


@pytest.mark.integration
@pytest.mark.parametrize(
    ("job", "kind", "asset", "check", "words"),
    [
        ("ingest", "run_failure", None, None, "ValueError: the source went away"),
        ("gate", "blocking_check_failed", "gated", "passes_gate", "challenger_auc: 0.61"),
        ("deploy", "automatic_rollback", "production_model", None, "production is `v1`"),
    ],
)
def test_the_sensor_sends_an_alert_of_the_right_kind_for_a_failed_run(
    receiver, settings, job, kind, asset, check, words
):
    instance = dg.DagsterInstance.ephemeral()
    result = run_job(job, instance)
    evaluate_sensor_on(result, instance, replace(settings, webhook_url=receiver.url))

    (body,) = receiver.bodies
    assert_slack_compatible(body)
    assert job in body["text"] and result.run_id in body["text"]
    (line,) = log_lines(settings)
    assert (line["kind"], line["asset_key"], line["check_name"]) == (kind, asset, check)
    assert (line["job_name"], line["run_id"]) == (job, result.run_id)
    assert line["delivery"] == "posted" and line["link_path"] == f"/runs/{result.run_id}"
    assert words in line["message"] + line["error_summary"]
    assert words in json.dumps(body)


@pytest.mark.integration
def test_a_rejected_alert_fails_the_sensor_tick_once_and_the_cursor_moves_on(receiver, settings):
    alert_on_run_failure = build_run_failure_sensor(replace(settings, webhook_url=receiver.url))
    instance = dg.DagsterInstance.ephemeral()
    first = alert_on_run_failure.evaluate_tick(dg.build_sensor_context(instance=instance))
    result = run_job("ingest", instance)
    receiver.script.append(Reply(status=403, body="invalid_token"))

    second = alert_on_run_failure.evaluate_tick(
        dg.build_sensor_context(instance=instance, cursor=first.cursor)
    )
    (reaction,) = second.dagster_run_reactions
    assert reaction.dagster_run.run_id == result.run_id
    assert reaction.error is not None and "HTTP 403" in reaction.error.message
    assert SECRET not in reaction.error.to_string()
    (line,) = log_lines(settings)
    assert line["delivery"] == "failed" and "invalid_token" in line["delivery_error"]

    third = alert_on_run_failure.evaluate_tick(
        dg.build_sensor_context(instance=instance, cursor=second.cursor)
    )
    assert third.dagster_run_reactions == [] and len(receiver.bodies) == 1
    assert len(log_lines(settings)) == 1
