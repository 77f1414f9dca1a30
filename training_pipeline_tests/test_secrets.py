"""Secrets (the CRM password, the alert webhook's token) come only from the environment
and appear in no event, compute log, file, alert or process output."""

import json
import logging
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from churn_demo import declared
from churn_demo.api_server import DemoApiServer
from churn_demo.generator import generate
from declared_sources import declared_raw_asset, resources_with_sources

from training_pipeline.alerts import WEBHOOK_URL_ENV, AlertDeliveryError
from training_pipeline.automation import alerts as sensor_module
from training_pipeline.automation.alerts import RecentFailure, build_run_failure_sensor
from training_pipeline.settings import Settings

pytestmark = pytest.mark.integration  # runs a failing job in process

PASSWORD = "S3cretPw0rd-h4"
TOKEN = "T0KEN4/B0KEN4/xoxb-never-in-a-log"
POSTGRES = f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:5432/test"


class Webhook:
    """A Slack-like receiver on loopback whose URL carries the token in its path."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        self.statuses: list[int] = []  # what to answer next; 200 when empty
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                webhook.bodies.append(self.path + "\n" + body.decode())
                status = webhook.statuses.pop(0) if webhook.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"invalid_token")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/services/{TOKEN}"


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    running = Webhook()
    running.thread.start()
    yield running
    running.server.shutdown()
    running.server.server_close()
    running.thread.join()


@pytest.fixture
def postgres_crm(settings: Settings) -> Iterator[tuple[str, sa.Engine, str]]:
    """A fresh schema in the local Postgres, reached with a password in the URL."""
    engine = sa.create_engine(POSTGRES)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as error:
        pytest.skip(f"no PostgreSQL reachable at 127.0.0.1:5432 ({error.orig})")
    schema = f"crm_secrets_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"create schema {schema}"))
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}", engine, schema
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"drop schema {schema} cascade"))
        engine.dispose()


def leaks(text: str) -> list[str]:
    return [secret for secret in (PASSWORD, TOKEN, TOKEN.split("/")[-1]) if secret in text]


def files_with_secrets(root: Path) -> dict[str, list[str]]:
    """Every file under ``root``, binary ones too (SQLite, DuckDB), searched as bytes."""
    found = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        text = path.read_bytes().decode("utf-8", errors="replace")
        if leaks(text):
            found[str(path.relative_to(root))] = leaks(text)
    return found


def test_the_crm_password_and_the_webhook_token_appear_in_no_log_event_file_or_alert(
    settings, postgres_crm, webhook, monkeypatch, tmp_path, capfd, caplog
):
    crm_url, engine, schema = postgres_crm
    monkeypatch.setenv("TRAINING_PIPELINE_CRM_URL", crm_url)
    monkeypatch.setenv(WEBHOOK_URL_ENV, webhook.url)
    monkeypatch.setattr(sensor_module, "webhook_health", RecentFailure())
    caplog.set_level(logging.DEBUG)
    settings = Settings.from_env()
    alert_on_run_failure = build_run_failure_sensor(settings)
    generate(settings, days=15, customers=40, seed=11)
    (declared.orders_landing(settings) / "orders_garbage.csv").write_bytes(b"\x00\x01garbage" * 20)
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()

    with (
        DemoApiServer(settings, port=0) as api,
        dg.instance_for_test(temp_dir=str(dagster_home)) as instance,
    ):
        monkeypatch.setenv("TRAINING_PIPELINE_API_URL", api.url)
        resources = resources_with_sources(Settings.from_env())
        raw_orders, raw_crm_customers, raw_tickets = (
            declared_raw_asset(settings, name) for name in ("orders", "crm_customers", "tickets")
        )
        ingested = dg.materialize(
            [raw_orders, raw_crm_customers, raw_tickets],
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )
        assert ingested.success
        with engine.begin() as conn:  # the CRM renames a column: the next run fails
            conn.execute(sa.text(f"alter table {schema}.customers rename column age to years"))
        failures = []
        for _ in range(2):  # each run is alerted once: the second one's post is rejected
            failed = dg.materialize(
                [raw_crm_customers], resources=resources, instance=instance, raise_on_error=False
            )
            assert not failed.success
            failures.append(
                dg.build_run_status_sensor_context(
                    sensor_name=alert_on_run_failure.name,
                    dagster_event=failed.get_run_failure_event(),
                    dagster_instance=instance,
                    dagster_run=failed.dagster_run,
                )
            )
        alert_on_run_failure(failures[0])  # posted
        webhook.statuses.append(403)
        with pytest.raises(AlertDeliveryError) as rejected:
            alert_on_run_failure(failures[1])  # rejected: the error names the webhook, masked

        events = [
            dg.serialize_value(entry)
            for run in instance.get_runs()
            for entry in instance.all_logs(run.run_id)
        ]
        runs = [dg.serialize_value(run) for run in instance.get_runs()]
        compute_logs = [path for path in dagster_home.rglob("*") if path.suffix in (".out", ".err")]

    # The failure and the alerts do name the CRM and the webhook, with the secrets masked,
    # so the scans below look where the secrets would have been.
    failure_messages = "\n".join(events)
    assert "postgres:***@127.0.0.1:5432/test" in failure_messages
    assert "lacks columns ['age']" in failure_messages
    alert_lines = (settings.data_dir / "alerts" / "alerts.jsonl").read_text().splitlines()
    assert [json.loads(line)["delivery"] for line in alert_lines] == ["posted", "failed"]
    assert "/***" in str(rejected.value) and len(webhook.bodies) == 2
    assert compute_logs, "the instance captured no compute logs to scan"
    output = capfd.readouterr()

    assert [leaks(e) for e in events if leaks(e)] == []
    assert [leaks(r) for r in runs if leaks(r)] == []
    assert files_with_secrets(dagster_home) == {}
    assert files_with_secrets(settings.data_dir) == {}
    assert leaks(str(rejected.value)) == [] and leaks(str(rejected.getrepr())) == []
    assert leaks("\n".join(b.split("\n", 1)[1] for b in webhook.bodies)) == []
    assert leaks(output.out) == [] and leaks(output.err) == []
    assert leaks(caplog.text) == []
