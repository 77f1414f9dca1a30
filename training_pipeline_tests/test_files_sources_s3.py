"""A files source whose landing folder is an S3 prefix keeps every local guarantee (on a
local S3, ``moto_server``; skipped without it): objects load with lineage naming their
keys, a bad object is quarantined with its reason while the good ones load, the same
content uploaded twice loads once, a young object waits for its settle time, a crash
between quarantining and deleting an object neither loses nor double-counts it, and the
new-data sensor requests a run for a new object.  Reconciliation is exact throughout."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from order_file_helpers import AT, HEADER, ORDERS, order_ids, reconcile_orders
from test_files_sources import declare, materialize, metadata, project, query  # noqa: F401

from training_pipeline.assets.source_files import files_source_resource
from training_pipeline.automation.policy import RetrainingPolicy
from training_pipeline.automation.sensors import build_new_data_sensor
from training_pipeline.components import COMPONENT_TYPES
from training_pipeline.components.errors import DeclarationError
from training_pipeline.components.loader import load_project
from training_pipeline.components.sources import declared_sources
from training_pipeline.ingestion.landing_s3 import ingest_s3_landing
from training_pipeline.ingestion.landing_s3_survey import scan_s3_landing
from training_pipeline.ingestion.manifest import LandingReport
from training_pipeline.resources import build_resources
from training_pipeline.runner import settle_waits
from training_pipeline.s3_filesystem import s3_filesystem
from training_pipeline.settings import LandingLimits, Settings, s3_access_from_env
from training_pipeline.spec.sources import FileLimits

pytestmark = pytest.mark.integration  # landing in a local S3 server


class Landing:
    """An S3 landing prefix of the orders source, and the local folders beside it."""

    def __init__(self, bucket: str, tmp_path: Path) -> None:
        self.url = f"s3://{bucket}/shop/orders/"
        self.fs = s3_filesystem(s3_access_from_env())  # the pipeline's one way to reach S3
        self.source = ORDERS.model_copy(update={"landing": self.url})
        self.staging = tmp_path / "s3-staging" / "orders"
        self.quarantine = tmp_path / "quarantine" / "orders"

    def put(self, name: str, data: bytes) -> str:
        self.fs.pipe_file(self.url + name, data)
        return self.url + name

    def ingest(self, con, batch: str = "b1", **kwargs: Any) -> LandingReport:
        return ingest_s3_landing(
            con, self.source, self.fs, self.url, self.staging, self.quarantine, batch, AT, **kwargs
        )


@pytest.fixture
def landing(s3_bucket, tmp_path: Path) -> Landing:
    bucket, _ = s3_bucket
    return Landing(bucket, tmp_path)


def csv(*rows: str) -> bytes:
    return (HEADER + "".join(f"{row}\n" for row in rows)).encode()


def statuses(report: LandingReport) -> dict[str, str]:
    return {o.path: o.status for o in report.outcomes}


def assert_reconciles(con, files_loaded: int, files_quarantined: int) -> None:
    ledger = reconcile_orders(con)
    assert ledger.holds, ledger
    assert (ledger.files_loaded, ledger.files_quarantined) == (files_loaded, files_quarantined)
    assert ledger.rows_landed == ledger.rows_loaded + ledger.rows_rejected + ledger.rows_quarantined


def test_csv_jsonl_and_parquet_objects_load_with_lineage_naming_their_keys(con, landing):
    a = landing.put("orders_a.csv", csv("O1,C1,2026-01-01,10.00,done"))
    line = {"order_id": "O2", "customer_id": "C2", "ordered_at": "x", "amount": "1", "status": "n"}
    b = landing.put("orders_b.jsonl", (json.dumps(line) + "\n").encode())
    table = pa.table({c: [f"{c}3"] for c in ("customer_id", "ordered_at", "amount", "status")})
    buffer = io.BytesIO()
    pq.write_table(table.append_column("order_id", pa.array(["O3"])), buffer)
    c = landing.put("orders_c.parquet", buffer.getvalue())

    report = landing.ingest(con)

    assert statuses(report) == {a: "loaded", b: "loaded", c: "loaded"}
    rows = con.execute("select order_id, _source_ref from raw.orders order by 1").fetchall()
    assert rows == [("O1", a), ("O2", b), ("O3", c)]
    manifest = con.execute("select path from raw.file_manifest order by 1").fetchall()
    assert manifest == [(a,), (b,), (c,)]
    assert landing.fs.exists(a), "a loaded object stays where it landed, as a local file does"
    assert not any(landing.staging.iterdir()), "the batch's staging folder is removed"
    assert_reconciles(con, files_loaded=3, files_quarantined=0)


def test_a_bad_object_is_moved_to_the_quarantine_folder_with_its_reason_and_the_good_one_loads(
    con, landing
):
    good = landing.put("orders_good.csv", csv("G1,C1,x,1,new", "G2,C2,x,2,new"))
    bad = landing.put("orders_bad.csv", b"order_id;customer_id\nO1;C1\n")

    report = landing.ingest(con)

    assert statuses(report) == {good: "loaded", bad: "quarantined"}
    assert order_ids(con) == ["G1", "G2"]
    assert not landing.fs.exists(bad), "deleted from the bucket once it is in the quarantine"
    moved = landing.quarantine / "b1" / "orders_bad.csv"
    assert moved.read_bytes() == b"order_id;customer_id\nO1;C1\n"
    reason = json.loads((landing.quarantine / "b1" / "orders_bad.csv.reason.json").read_text())
    assert reason["file"] == bad and "';'-delimited" in reason["reason"]
    assert_reconciles(con, files_loaded=1, files_quarantined=1)


def test_the_same_content_uploaded_twice_loads_once_and_an_unchanged_object_is_not_downloaded(
    con, landing, monkeypatch: pytest.MonkeyPatch
):
    data = csv("O1,C1,2026-01-01,10.00,done")
    first = landing.put("orders_1.csv", data)
    assert statuses(landing.ingest(con, "b1")) == {first: "loaded"}
    time.sleep(1.1)  # LastModified has one-second steps: the re-upload is a new object
    landing.put("orders_1.csv", data)
    copy = landing.put("orders_1_again.csv", data)

    second = landing.ingest(con, "b2")

    assert statuses(second) == {first: "skipped", copy: "skipped"}
    assert order_ids(con) == ["O1"]
    reasons = {o.path: o.reason for o in second.outcomes}
    assert reasons[copy] == f"the same content as {first}, loaded before: not loaded again"
    assert_reconciles(con, files_loaded=3, files_quarantined=0)

    def no_download(*args: object) -> None:
        raise AssertionError(f"downloaded again: {args}")

    monkeypatch.setattr(landing.fs, "get_file", no_download)
    third = landing.ingest(con, "b3")
    assert set(statuses(third).values()) == {"skipped"}


def test_an_object_younger_than_the_settle_time_waits_for_a_later_run(con, landing):
    key = landing.put("orders_1.csv", csv("O1,C1,2026-01-01,10.00,done"))
    limits = LandingLimits(settle_s=60)

    waiting = landing.ingest(con, "b1", limits=limits)
    assert statuses(waiting) == {key: "deferred"}
    assert "less than the settle time of 60 s" in (waiting.outcomes[0].reason or "")
    assert order_ids(con) == []

    later = landing.ingest(con, "b2", limits=limits, now=time.time() + 61)
    assert statuses(later) == {key: "loaded"}
    assert_reconciles(con, files_loaded=1, files_quarantined=0)


def test_a_crash_between_quarantining_and_deleting_neither_loses_nor_repeats_the_object(
    con, landing, monkeypatch: pytest.MonkeyPatch
):
    bad = landing.put("orders_bad.csv", b"")
    rm_file = landing.fs.rm_file

    def crash(path: str) -> None:
        raise ConnectionError(f"the process died before deleting {path}")

    monkeypatch.setattr(landing.fs, "rm_file", crash)
    with pytest.raises(ConnectionError):
        landing.ingest(con, "b1")
    assert landing.fs.exists(bad) and (landing.quarantine / "b1" / "orders_bad.csv").exists()

    monkeypatch.setattr(landing.fs, "rm_file", rm_file)
    again = landing.ingest(con, "b2")
    assert statuses(again) == {bad: "skipped"}
    assert not landing.fs.exists(bad)
    assert not (landing.quarantine / "b2").exists(), "quarantined once, not twice"
    assert_reconciles(con, files_loaded=0, files_quarantined=1)


def test_the_sensor_scan_yields_a_new_object_once_and_a_reupload_again(landing):
    first = scan_s3_landing(landing.fs, landing.url, None)
    assert first.new_content == ()
    landing.put("orders_1.csv", csv("O1,C1,2026-01-01,10.00,done"))
    seen = scan_s3_landing(landing.fs, landing.url, first.cursor)
    assert [key.split("@")[0] for key in seen.new_content] == [landing.url + "orders_1.csv"]
    assert scan_s3_landing(landing.fs, landing.url, seen.cursor).new_content == ()
    young = scan_s3_landing(landing.fs, landing.url, None, LandingLimits(settle_s=60))
    assert young.new_content == () and young.deferred == (landing.url + "orders_1.csv",)
    time.sleep(1.1)  # LastModified has one-second steps
    landing.put("orders_1.csv", csv("O1,C1,2026-01-01,11.00,done"))
    reuploaded = scan_s3_landing(landing.fs, landing.url, seen.cursor)
    assert [key.split("@")[0] for key in reuploaded.new_content] == [landing.url + "orders_1.csv"]


WEATHER_ON_S3 = """
    type: training_pipeline.components.Sources
    attributes:
      system: met
      sources:
        - name: weather
          kind: files
          landing: {landing}
          limits: {{settle_s: 0s}}
          contract:
            primary_key: [day]
            columns: [day, temp_c]
"""


def test_a_declared_s3_landing_prefix_is_materialized_and_watched_by_the_sensor(
    project: Settings,  # noqa: F811
    s3_bucket,
):
    bucket, fs = s3_bucket
    url = f"s3://{bucket}/met/weather/"
    declare(project, "met", WEATHER_ON_S3.format(landing=url))
    loaded = load_project(project, COMPONENT_TYPES)
    sensor = build_new_data_sensor(RetrainingPolicy(), declared_sources(loaded))
    resources = build_resources(project) | dict(loaded.defs.resources or {})

    def tick(cursor: str | None) -> tuple[list[dg.RunRequest], str | None]:
        with dg.build_sensor_context(
            resources=resources, cursor=cursor, instance=dg.DagsterInstance.ephemeral()
        ) as context:
            result = sensor(context)
        return list(result.run_requests or []), result.cursor

    _, cursor = tick(None)
    fs.pipe_file(url + "day1.csv", b"day,temp_c\n2026-01-01,4.5\n")
    requests, cursor = tick(cursor)
    assert [[k.path for k in r.asset_selection] for r in requests] == [[["raw", "weather"]]]
    assert tick(cursor)[0] == []

    result = materialize(project, loaded)
    assert result.success
    assert metadata(result)["files_taken"] == [url + "day1.csv"]
    assert query(project, "select day, _source_ref from raw.weather") == [
        ("2026-01-01", url + "day1.csv")
    ]


@pytest.mark.parametrize("landing_url", ["s3://Bad_Bucket/x/", "s3://bucket/../x/"])
def test_a_landing_that_is_not_an_s3_bucket_and_prefix_fails_at_load_naming_the_field(
    project: Settings,  # noqa: F811
    landing_url: str,
):
    declare(project, "met", WEATHER_ON_S3.format(landing=landing_url))
    with pytest.raises(DeclarationError) as raised:
        load_project(project, COMPONENT_TYPES)
    message = str(raised.value)
    assert "landing" in message and "is not an S3 bucket and prefix" in message


def test_a_declared_s3_prefix_without_keys_fails_at_load_naming_the_variables(
    project: Settings,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    declare(project, "met", WEATHER_ON_S3.format(landing="s3://bucket/met/"))
    with pytest.raises(DeclarationError) as raised:
        load_project(project, COMPONENT_TYPES)
    message = str(raised.value)
    assert "sources.0.landing" in message and "s3://bucket/met/" in message
    assert "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set" in message


def test_an_explicit_run_waits_for_an_object_still_settling(landing, project):  # noqa: F811
    landing.put("orders_1.csv", csv("O1,C1,2026-01-01,10.00,done"))
    source = landing.source.model_copy(update={"limits": FileLimits(settle_s=60)})
    resource = files_source_resource(source, project)
    (wait_s,) = settle_waits({"orders": resource}).values()
    assert 50 < wait_s <= 60
    assert settle_waits({"orders": resource}, now=time.time() + 61) == {"orders": 0.0}
