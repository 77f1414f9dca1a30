"""Shadow serving: the gate-passing candidate sees every request, is logged, is never
returned, its agreement with production is measured, and a promotion can wait for it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
from churn_model import churn_spec, key
from serving_models import NAME, churn_registry, record, servable
from starlette.testclient import TestClient

from training_pipeline.assets.model_deployment import promotion_block
from training_pipeline.assets.model_names import DeclaredModel
from training_pipeline.cli_serve import build_server
from training_pipeline.resources import build_resources
from training_pipeline.serving.app import Limits
from training_pipeline.serving.ingest import ingest, shadow_agreement
from training_pipeline.serving.shadow import (
    mark_started,
    shadow_candidate,
    shadow_wait,
    shadowed_since,
)
from training_pipeline.settings import Settings
from training_pipeline.spec.model_parts import Serve

PASSED, FAILED = {"passed": True}, {"passed": False}
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_the_shadow_is_the_newest_gate_passing_version_registered_after_production(
    tmp_path: Path,
):
    registry = churn_registry(tmp_path / "models")
    old, production, passed, failed = (servable(registry) for _ in range(4))
    registry.promote(production)
    for version, decision in ((old, PASSED), (passed, PASSED), (failed, FAILED)):
        registry.record_gate(version, decision)

    assert shadow_candidate(registry.versions(), production) == passed
    registry.promote(passed)
    assert shadow_candidate(registry.versions(), passed) is None


def test_a_rejected_candidate_is_never_shadowed(tmp_path: Path):
    registry = churn_registry(tmp_path / "models")
    production, candidate = servable(registry), servable(registry)
    registry.promote(production)
    registry.record_gate(candidate, PASSED)
    registry.promote(candidate)
    registry.rollback(reason="test: bad in production")

    assert shadow_candidate(registry.versions(), production) is None


def test_the_shadow_gets_every_request_is_logged_and_never_answers(settings: Settings):
    registry = churn_registry(settings.models_dir)
    production, candidate = servable(registry), servable(registry, "hist_gradient_boosting")
    registry.promote(production)
    registry.record_gate(candidate, PASSED)
    server = build_server(settings, [NAME], Limits(watch_interval_s=0.05), shadowed=[NAME])
    with TestClient(server) as client:
        answers = [
            client.post(f"/v1/models/{NAME}/predict", json=record(i)).json() for i in range(5)
        ]
        shown = client.get(f"/v1/models/{NAME}").json()

    lines = [
        json.loads(line)
        for path in (settings.prediction_logs_dir / NAME).glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    shadowed = {line["request_id"] for line in lines if line["role"] == "shadow"}
    assert {answer["version"] for answer in answers} == {production}
    assert shown["shadow"] == candidate
    assert shadowed == {answer["request_id"] for answer in answers}
    assert {line["version"] for line in lines if line["role"] == "shadow"} == {candidate}
    assert shadowed_since(settings.prediction_logs_dir, NAME, candidate) is not None

    con = duckdb.connect()
    ingest(con, settings.prediction_logs_dir, NAME)
    (agreement,) = shadow_agreement(con, NAME)
    assert (agreement["shadow"], agreement["production"]) == (candidate, production)
    assert agreement["records"] == 5
    assert 0.0 <= agreement["agreement"] <= 1.0


def test_a_promotion_waits_for_the_minimum_shadow_period(tmp_path: Path):
    six_hours = 6 * 3600

    assert "has not served in shadow yet" in shadow_wait(six_hours, None, NOW, "v2")
    assert "shadowed production for 2.0h" in shadow_wait(
        six_hours, NOW - timedelta(hours=2), NOW, "v2"
    )
    assert shadow_wait(six_hours, NOW - timedelta(hours=7), NOW, "v2") is None
    assert shadow_wait(None, None, NOW, "v2") is None


def test_the_start_of_shadowing_is_kept_when_the_server_restarts(tmp_path: Path):
    mark_started(tmp_path, NAME, "v2", NOW)
    mark_started(tmp_path, NAME, "v2", NOW + timedelta(hours=3))

    assert shadowed_since(tmp_path, NAME, "v2") == NOW


def test_a_candidate_not_shadowed_for_the_minimum_period_is_not_promoted(settings: Settings):
    serve = Serve(shadow=True, min_shadow_period="6h")
    model = DeclaredModel(churn_spec().model_copy(update={"serve": serve}), key("features"))
    store = build_resources(settings)["model_store"]
    registry = churn_registry(settings.models_dir)
    production, candidate = servable(registry), servable(registry)
    registry.promote(production)
    registry.record_gate(candidate, PASSED)

    unshadowed = promotion_block(model, registry, store, candidate)
    seven_hours_ago = datetime.now(UTC) - timedelta(hours=7)
    mark_started(settings.prediction_logs_dir, NAME, candidate, seven_hours_ago)
    shadowed_long_enough = promotion_block(model, registry, store, candidate)

    assert "has not served in shadow yet" in unshadowed
    assert shadowed_long_enough is None
