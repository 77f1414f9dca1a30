"""Live metrics: served records joined point-in-time to the labels that arrived later,
production and shadow measured on the same requests, unlabelled records counted only."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from churn_model import churn_spec, key
from churn_problem import CHURN
from serving_models import NAME, churn_registry, record, servable
from starlette.testclient import TestClient

from training_pipeline.assets.model_names import DeclaredModel
from training_pipeline.assets.model_serving import serving_assets
from training_pipeline.cli_serve import build_server
from training_pipeline.ml.problem import GatePolicy, Holdout, ProblemSpec
from training_pipeline.resources import build_resources
from training_pipeline.serving.app import Limits
from training_pipeline.serving.features import FeatureSpec, RequestError
from training_pipeline.serving.ingest import ingest
from training_pipeline.serving.live_labels import LiveMetrics, live_metrics
from training_pipeline.serving.prediction_log import entry, write_batch
from training_pipeline.settings import Settings

AT = datetime(2026, 3, 9, 12, tzinfo=UTC).isoformat()


def served(request: str, role: str, version: str, score: float, entity, as_of, model="churn"):
    output = {"score": score, "prediction": float(score >= 0.5)}
    return entry(request, 0, model, version, role, AT, {"age": 30}, output, entity, as_of)


@pytest.fixture
def churn_warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    churn_labels(con)
    return con


def churn_labels(con: duckdb.DuckDBPyConnection) -> None:
    """Weekly snapshots: March 1 labelled, March 8 labelled for C2 only (C1's window is
    still open), as the features model leaves a label null until its horizon passed."""
    con.execute("create schema features")
    con.execute(
        "create table features.customer_snapshots as select * from (values "
        "('C1', date '2026-03-01', true), ('C2', date '2026-03-01', false), "
        "('C3', date '2026-03-01', false), ('C4', date '2026-03-01', true), "
        "('C1', date '2026-03-08', null), ('C2', date '2026-03-08', true)) "
        "t(customer_id, snapshot_date, churned)"
    )


def churn_log(tmp_path: Path, con: duckdb.DuckDBPyConnection | None) -> None:
    """The served records of the tests; ingested when ``con`` is given."""
    production = [
        served("r1", "production", "v1", 0.9, "C1", "2026-03-01T00:00:00"),
        served("r2", "production", "v1", 0.2, "C2", "2026-03-01T00:00:00"),
        served("r3", "production", "v1", 0.6, "C3", "2026-03-01T00:00:00"),
        served("r4", "production", "v1", 0.4, "C4", "2026-03-01T00:00:00"),
        served("r5", "production", "v1", 0.7, "C1", "2026-03-08T00:00:00"),  # label not yet
        served("r6", "production", "v1", 0.3, None, None),  # the client sent no id
        # Sent on March 3 (10:00 at +02:00): the March 1 row, not March 8's later label.
        served("r7", "production", "v1", 0.1, "C2", "2026-03-03T08:00:00"),
    ]
    shadow = [
        served("r1", "shadow", "v2", 0.8, "C1", "2026-03-01T00:00:00"),
        served("r2", "shadow", "v2", 0.3, "C2", "2026-03-01T00:00:00"),
        served("r3", "shadow", "v2", 0.3, "C3", "2026-03-01T00:00:00"),
        served("r4", "shadow", "v2", 0.7, "C4", "2026-03-01T00:00:00"),
        served("r6", "shadow", "v2", 0.3, None, None),
    ]
    write_batch(tmp_path, production + shadow, 1)
    if con is not None:
        ingest(con, tmp_path, "churn")


def by_role(found: list[LiveMetrics]) -> dict[str, LiveMetrics]:
    return {m.role: m for m in found}


def test_production_is_scored_on_the_served_rows_whose_label_arrived_at_their_time(
    tmp_path: Path, churn_warehouse
):
    churn_log(tmp_path, churn_warehouse)

    production = by_role(live_metrics(churn_warehouse, "churn", CHURN))["production"]

    # Scored: r1-r4 and r7 (as of March 1); labels 1 0 0 1 0; scores .9 .2 .6 .4 .1.
    assert (production.version, production.served) == ("v1", 7)
    assert (production.identified, production.labelled) == (6, 5)
    values = production.values
    assert values["roc_auc"] == pytest.approx(5 / 6)
    assert values["pr_auc"] == pytest.approx((1 + 2 / 3) / 2)
    assert values["brier"] == pytest.approx((0.01 + 0.04 + 0.36 + 0.36 + 0.01) / 5)
    logs = [math.log(p) for p in (0.9, 0.8, 0.4, 0.4, 0.9)]
    assert values["log_loss"] == pytest.approx(-sum(logs) / 5)
    # The decisions served (.9 .6 positive): one hit, one false alarm, one miss.
    assert values["f1"] == pytest.approx(0.5)


def test_shadow_and_production_are_compared_on_the_requests_the_shadow_answered(
    tmp_path: Path, churn_warehouse
):
    churn_log(tmp_path, churn_warehouse)

    found = by_role(live_metrics(churn_warehouse, "churn", CHURN, shadowed_by="v2"))

    production, shadow = found["production"], found["shadow"]
    assert (shadow.version, shadow.served, shadow.identified, shadow.labelled) == ("v2", 5, 4, 4)
    assert (production.served, production.labelled) == (5, 4)
    assert shadow.values["roc_auc"] == pytest.approx(1.0)
    assert shadow.values["brier"] == pytest.approx((0.04 + 0.09 + 0.09 + 0.09) / 4)
    assert shadow.values["f1"] == pytest.approx(1.0)
    assert production.values["roc_auc"] == pytest.approx(3 / 4)
    assert production.values["brier"] == pytest.approx((0.01 + 0.04 + 0.36 + 0.36) / 4)


def test_before_any_label_arrives_rows_are_counted_and_no_metric_is_given(tmp_path: Path):
    con = duckdb.connect()
    con.execute("create schema features")
    con.execute(
        "create table features.customer_snapshots (customer_id varchar, "
        "snapshot_date date, churned boolean)"
    )
    write_batch(tmp_path, [served("r1", "production", "v1", 0.9, "C1", "2026-03-01")], 1)
    ingest(con, tmp_path, "churn")

    (production,) = live_metrics(con, "churn", CHURN)

    assert (production.served, production.identified, production.labelled) == (1, 1, 0)
    assert set(production.values.values()) == {None}


def daily_problem() -> ProblemSpec:
    """One row per day, the day being both the id and the time (like the weather model)."""
    return ProblemSpec(
        name="daily",
        description="Tomorrow's maximum temperature.",
        label_description="The next day's maximum.",
        relation="features.daily",
        id_column="day",
        time_column="day",
        label="temp_max_next_day",
        task="regression",
        numeric=("temp_max",),
        categorical=(),
        holdout=Holdout(last_periods=2),
        gate=GatePolicy(metric="rmse", ceiling=5.0),
    )


def test_a_problem_whose_id_is_its_time_joins_on_the_time_with_a_time_zone(tmp_path: Path):
    con = duckdb.connect()
    con.execute("set TimeZone = 'America/Los_Angeles'")  # the session's zone must not matter
    con.execute("create schema features")
    con.execute(
        "create table features.daily as select * from (values "
        "(timestamptz '2026-03-01 00:00:00+00', 10.0), "
        "(timestamptz '2026-03-02 00:00:00+00', 14.0), "
        "(timestamptz '2026-03-03 00:00:00+00', null)) t(day, temp_max_next_day)"
    )
    spec = FeatureSpec.from_problem(dataclasses.asdict(daily_problem()))
    sent = [{"temp_max": 9.0, "day": day} for day in ("2026-03-01", "2026-03-02T01:00:00+01:00")]
    rows = [
        served(f"r{i}", "production", "v1", score, *spec.identity(one), model="daily")
        for i, (one, score) in enumerate(zip(sent, (12.0, 11.0), strict=True))
    ]
    rows.append(
        served("r9", "production", "v1", 20.0, *spec.identity({"day": "2026-03-03"}), model="daily")
    )
    write_batch(tmp_path, rows, 1)
    ingest(con, tmp_path, "daily")

    (production,) = live_metrics(con, "daily", daily_problem())

    # 01:00 at +01:00 on March 2 is midnight UTC: the March 2 row (14), not March 1's.
    assert (production.served, production.labelled) == (3, 2)
    assert production.values["rmse"] == pytest.approx(math.sqrt((4 + 9) / 2))
    assert production.values["mae"] == pytest.approx(2.5)


def test_a_record_may_carry_its_id_and_time_and_they_are_checked():
    spec = FeatureSpec.from_problem(
        dataclasses.asdict(CHURN) | {"numeric": ["age"], "categorical": []}
    )
    sent = {"age": 40, "customer_id": 17, "snapshot_date": "2026-03-01T10:00:00+02:00"}
    spec.records(sent, 10)

    assert spec.identity(sent) == ("17", "2026-03-01T08:00:00")
    assert spec.features_of(sent) == {"age": 40}
    assert spec.identity({"age": 40}) == (None, None)
    with pytest.raises(RequestError, match="snapshot_date"):
        spec.records({"age": 40, "snapshot_date": "next week"}, 10)
    with pytest.raises(RequestError, match="customer_id"):
        spec.records({"age": 40, "customer_id": 1.5}, 10)


def test_labels_from_a_relation_that_does_not_exist_are_refused_naming_it():
    with pytest.raises(ValueError, match="features.customer_snapshots"):
        live_metrics(duckdb.connect(), "churn", CHURN)


@pytest.mark.integration
def test_the_candidate_shows_both_models_live_metrics_and_production_its_own(settings: Settings):
    model = DeclaredModel(churn_spec(), key("features"))
    resources = build_resources(settings)
    with resources["warehouse"].connect() as con:
        churn_labels(con)
    churn_log(settings.prediction_logs_dir, None)

    (asset,) = serving_assets(model)
    result = dg.materialize([asset], resources=resources)

    shown = {
        o.asset_key: {k: v.value for k, v in o.metadata.items()}
        for o in result.asset_observations_for_node(asset.op.name)
    }
    candidate, production = shown[model.candidate], shown[model.production]
    assert candidate["shadow_version"] == "v2"
    assert (candidate["live_rows_served"], candidate["live_rows_labelled"]) == (5, 4)
    assert candidate["live_roc_auc"] == 1.0
    assert candidate["production_live_roc_auc"] == 0.75
    assert production["live_version"] == "v1"
    assert (production["live_rows_served"], production["live_rows_labelled"]) == (7, 5)
    assert production["live_brier"] == round(0.78 / 5, 4)


@pytest.mark.integration
def test_ingestion_goes_on_and_says_so_before_the_labels_relation_exists(settings: Settings):
    model = DeclaredModel(churn_spec(), key("features"))
    churn_log(settings.prediction_logs_dir, None)

    (asset,) = serving_assets(model)
    result = dg.materialize([asset], resources=build_resources(settings))

    (materialization,) = result.asset_materializations_for_node(asset.op.name)
    assert materialization.metadata["rows_loaded"].value == 12
    assert "not built yet" in materialization.metadata["live_metrics"].value


def test_the_server_logs_the_id_and_time_a_client_sent_with_both_models_predictions(
    settings: Settings,
):
    registry = churn_registry(settings.models_dir)
    production, candidate = servable(registry), servable(registry)
    registry.promote(production)
    registry.record_gate(candidate, {"passed": True})
    identity = {"customer_id": "C-1042", "snapshot_date": "2026-03-01T02:00:00+02:00"}
    server = build_server(settings, [NAME], Limits(watch_interval_s=0.05), shadowed=[NAME])
    with TestClient(server) as client:
        answer = client.post(f"/v1/models/{NAME}/predict", json=record(0) | identity)
        anonymous = client.post(f"/v1/models/{NAME}/predict", json=record(1))

    lines = [
        json.loads(line)
        for path in (settings.prediction_logs_dir / NAME).glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    sent = {
        (x["role"], x["entity"], x["as_of"])
        for x in lines
        if x["request_id"] == answer.json()["request_id"]
    }
    assert (answer.status_code, anonymous.status_code) == (200, 200)
    assert sent == {
        ("production", "C-1042", "2026-03-01T00:00:00"),
        ("shadow", "C-1042", "2026-03-01T00:00:00"),
    }
    assert all("customer_id" not in x["features"] for x in lines)
    assert {
        (x["entity"], x["as_of"])
        for x in lines
        if x["request_id"] == anonymous.json()["request_id"]
    } == {(None, None)}


def test_a_log_file_written_before_the_identity_was_logged_loads_with_none(tmp_path: Path):
    old = served("r1", "production", "v1", 0.9, None, None)
    del old["entity"], old["as_of"]
    (tmp_path / "churn").mkdir()
    (tmp_path / "churn" / "20260101T000000-1-1.jsonl").write_text(json.dumps(old) + "\n")
    con = duckdb.connect()

    ingest(con, tmp_path, "churn")

    assert con.execute("select entity, as_of from serving.predictions").fetchall() == [(None, None)]


def test_a_predictions_table_from_before_the_identity_gains_its_columns(tmp_path: Path):
    con = duckdb.connect()
    con.execute("create schema serving")
    con.execute(
        "create table serving.predictions (model varchar, version varchar, role varchar, "
        "request_id varchar, record integer, predicted_at timestamptz, score double, "
        "prediction double, features json, log_file varchar)"
    )
    write_batch(tmp_path, [served("r1", "production", "v1", 0.9, "C1", "2026-03-01")], 1)

    ingest(con, tmp_path, "churn")

    assert con.execute("select entity, as_of from serving.predictions").fetchall() == [
        ("C1", "2026-03-01")
    ]
