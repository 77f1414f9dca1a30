"""The prediction endpoint's contract: what it accepts, what it refuses and says, and
readiness before and after a production model exists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from serving_models import NAME, churn_registry, record, servable
from starlette.testclient import TestClient

from training_pipeline.cli import main
from training_pipeline.ml.artifacts import sha256_bytes
from training_pipeline.ml.training_rows import TRAINING_SET_FILE
from training_pipeline.serving.app import Limits, build_app
from training_pipeline.serving.metrics import ServingMetrics
from training_pipeline.serving.swap import ServedModels
from training_pipeline_tests.churn_model import CHURN

FAST_WATCH = Limits(watch_interval_s=0.05)


def client_for(models_dir: Path, limits: Limits = FAST_WATCH) -> TestClient:
    metrics = ServingMetrics()
    served = ServedModels(
        {NAME: churn_registry(models_dir)},
        on_refused=lambda refusal: None,
        on_swapped=metrics.swapped,
    )
    return TestClient(build_app(served, metrics, None, limits))


@pytest.fixture
def client(tmp_path: Path):
    registry = churn_registry(tmp_path / "models")
    registry.promote(servable(registry))
    with client_for(tmp_path / "models") as client:
        yield client


def test_a_single_record_gets_its_probability_decision_and_the_version_that_made_it(client):
    response = client.post(f"/v1/models/{NAME}/predict", json=record())

    assert response.status_code == 200
    body = response.json()
    assert 0.0 <= body["score"] <= 1.0
    assert body["prediction"] == int(body["score"] >= 0.5)
    assert body["version"] == client.get(f"/v1/models/{NAME}").json()["version"]
    assert body["request_id"] == response.headers["x-request-id"]


def test_a_list_of_records_gets_one_prediction_each_in_order(client):
    records = [record(i) for i in range(5)]

    body = client.post(f"/v1/models/{NAME}/predict", json=records).json()

    singles = [client.post(f"/v1/models/{NAME}/predict", json=r).json()["score"] for r in records]
    assert [p["score"] for p in body["predictions"]] == pytest.approx(singles)


def test_a_missing_feature_is_refused_naming_it(client):
    sent = record()
    del sent["tenure_days"]

    response = client.post(f"/v1/models/{NAME}/predict", json=sent)

    assert response.status_code == 422
    assert response.json()["field"] == "tenure_days"
    assert "missing" in response.json()["error"]


def test_an_extra_field_is_refused_naming_it(client):
    response = client.post(f"/v1/models/{NAME}/predict", json=record() | {"churned": 1})

    assert response.status_code == 422
    assert response.json() == {"field": "churned", "error": "not a feature of this model"}


@pytest.mark.parametrize(
    ("field", "value"),
    [("tenure_days", "long"), ("tenure_days", True), ("country_code", 3), ("segment", ["smb"])],
)
def test_a_wrongly_typed_field_is_refused_naming_it(client, field, value):
    response = client.post(f"/v1/models/{NAME}/predict", json=record() | {field: value})

    assert response.status_code == 422
    assert response.json()["field"] == field


def test_a_wrong_field_in_a_list_is_named_with_its_record(client):
    records = [record(0), record(1) | {"age": "old"}]

    response = client.post(f"/v1/models/{NAME}/predict", json=records)

    assert (response.status_code, response.json()["field"]) == (422, "records[1].age")


def test_null_features_are_accepted_as_missing_values(client):
    nulls = dict.fromkeys(CHURN.features)

    response = client.post(f"/v1/models/{NAME}/predict", json=nulls)

    assert response.status_code == 200
    assert 0.0 <= response.json()["score"] <= 1.0


def test_a_body_that_is_not_json_is_refused(client):
    response = client.post(f"/v1/models/{NAME}/predict", content=b"{not json")

    assert response.status_code == 422


def test_a_body_too_large_is_refused_with_413(tmp_path: Path):
    registry = churn_registry(tmp_path / "models")
    registry.promote(servable(registry))
    limits = Limits(max_body_bytes=2000, watch_interval_s=0.05)
    with client_for(tmp_path / "models", limits) as client:
        response = client.post(f"/v1/models/{NAME}/predict", json=[record()] * 20)

    assert response.status_code == 413


def test_too_many_records_are_refused_with_413(tmp_path: Path):
    registry = churn_registry(tmp_path / "models")
    registry.promote(servable(registry))
    with client_for(tmp_path / "models", Limits(max_records=3, watch_interval_s=0.05)) as client:
        response = client.post(f"/v1/models/{NAME}/predict", json=[record()] * 4)

    assert response.status_code == 413


def test_a_declared_too_large_body_is_refused_with_413_before_it_is_read(tmp_path: Path):
    registry = churn_registry(tmp_path / "models")
    registry.promote(servable(registry))
    limits = Limits(max_body_bytes=2000, watch_interval_s=0.05)
    body = b'{"age": 1}'
    headers = {"content-type": "application/json", "content-length": "999999"}
    with client_for(tmp_path / "models", limits) as client:
        # The declared length alone decides: the client here sends less than it declares.
        response = client.post(f"/v1/models/{NAME}/predict", content=body, headers=headers)

    assert response.status_code == 413
    assert "999999" in response.json()["error"]


def test_nan_in_the_body_is_refused_as_not_json(client):
    sent = json.dumps(record() | {"age": float("nan")})

    response = client.post(f"/v1/models/{NAME}/predict", content=sent)

    assert response.status_code == 422
    assert "not valid JSON" in response.json()["error"]


def test_the_request_id_sent_is_the_one_answered_and_echoed(client):
    headers = {"x-request-id": "client-chosen-id"}

    response = client.post(f"/v1/models/{NAME}/predict", json=record(), headers=headers)

    assert response.json()["request_id"] == "client-chosen-id"
    assert response.headers["x-request-id"] == "client-chosen-id"


def test_predict_takes_only_post(client):
    response = client.get(f"/v1/models/{NAME}/predict")

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_a_path_with_more_segments_than_a_model_name_is_not_the_predict_route(client):
    assert client.post(f"/v1/models/{NAME}/x/predict", json=record()).status_code == 404


def test_an_unknown_model_is_404(client):
    assert client.post("/v1/models/nope/predict", json=record()).status_code == 404


def test_not_ready_and_503_until_a_production_model_exists_then_ready(tmp_path: Path):
    registry = churn_registry(tmp_path / "models")
    version = servable(registry)
    with client_for(tmp_path / "models") as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
        assert client.post(f"/v1/models/{NAME}/predict", json=record()).status_code == 503

        registry.promote(version)
        _wait_until(lambda: client.get("/readyz").status_code == 200)

        assert client.post(f"/v1/models/{NAME}/predict", json=record()).json()["version"] == version


def test_the_model_listing_shows_version_metrics_and_training_data_hash(client, tmp_path):
    listing = client.get("/v1/models").json()
    detail = client.get(f"/v1/models/{NAME}").json()

    assert listing["models"] == [
        {
            "name": NAME,
            "version": detail["version"],
            "served_by": "fast",
            "ready": True,
            "refused": {},
            "shadow": None,
        }
    ]
    assert detail["metrics"]["roc_auc"] == 0.81
    stored = churn_registry(tmp_path / "models").read_file(detail["version"], TRAINING_SET_FILE)
    assert detail["trained_on_hash"] == sha256_bytes(stored)
    assert list(detail["features"]) == list(CHURN.features)


def test_metrics_count_requests_by_status_and_show_the_version_served(client):
    client.post(f"/v1/models/{NAME}/predict", json=record())
    client.post(f"/v1/models/{NAME}/predict", json={})
    version = client.get(f"/v1/models/{NAME}").json()["version"]

    text = client.get("/metrics").text

    assert f'serving_requests_total{{model="{NAME}",status="200"}} 1.0' in text
    assert f'serving_requests_total{{model="{NAME}",status="422"}} 1.0' in text
    assert f'serving_request_seconds_count{{model="{NAME}"}} 2.0' in text
    assert f'serving_model_version_info{{model="{NAME}",version="{version}"}} 1.0' in text


def _wait_until(condition, timeout_s: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_serving_a_model_the_project_does_not_declare_is_refused_naming_the_declared_ones(
    settings, capsys
):
    code = main(["serve", "--model", "nope", "--port", "0"])

    error = capsys.readouterr().err
    assert code == 1
    assert "no model named nope" in error and "churn" in error
