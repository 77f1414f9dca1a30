"""Every served prediction reaches the warehouse once, and live traffic can be the
prediction-drift check's current window."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from churn_model import churn_spec, key
from serving_models import NAME, churn_registry, record, servable
from starlette.testclient import TestClient

from training_pipeline.assets.model_drift import check_prediction_drift
from training_pipeline.assets.model_names import DeclaredModel
from training_pipeline.assets.model_serving import serving_assets
from training_pipeline.cli_serve import build_server
from training_pipeline.resources import build_resources
from training_pipeline.serving.app import Limits
from training_pipeline.serving.ingest import LEDGER, PREDICTIONS, ingest
from training_pipeline.serving.prediction_log import PredictionLog, entry, write_batch
from training_pipeline.settings import Settings
from training_pipeline.spec.model_parts import Drift


def logged(request_id: str, score: float = 0.25) -> dict:
    at = datetime.now(UTC).isoformat()
    output = {"score": score, "prediction": 0}
    features = {"age": 30, "segment": None}
    return entry(request_id, 0, NAME, "v1", "production", at, features, output)


def test_the_log_writes_batches_as_whole_files_per_model(tmp_path: Path):
    log = PredictionLog(tmp_path, batch_size=4, flush_s=0.05)
    log.append(logged(f"r{i}") for i in range(10))
    log.close()

    files = sorted((tmp_path / NAME).glob("*.jsonl"))
    lines = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert [line["request_id"] for line in lines] == [f"r{i}" for i in range(10)]
    assert len(files) >= 3  # at most four entries per file
    assert list(tmp_path.rglob(".*.tmp")) == []


def test_entries_arriving_within_the_flush_period_share_one_file(tmp_path: Path):
    log = PredictionLog(tmp_path, flush_s=0.5)
    for i in range(5):
        log.append([logged(f"r{i}")])
        time.sleep(0.02)
    time.sleep(1.0)
    files = sorted((tmp_path / NAME).glob("*.jsonl"))
    log.close()

    assert len(files) == 1
    assert len(files[0].read_text().splitlines()) == 5


def test_closing_writes_what_is_queued_without_waiting_for_the_flush_period(tmp_path: Path):
    log = PredictionLog(tmp_path, flush_s=60)
    log.append(logged(f"r{i}") for i in range(3))
    started = time.monotonic()
    log.close()

    assert time.monotonic() - started < 10
    written = [f.read_text() for f in (tmp_path / NAME).glob("*.jsonl")]
    assert sum(len(text.splitlines()) for text in written) == 3


def test_a_full_queue_drops_and_counts_instead_of_blocking_the_request(tmp_path: Path):
    dropped = []
    log = PredictionLog(tmp_path, max_queued=5, flush_s=60, on_dropped=dropped.append)
    log.append(logged(f"r{i}") for i in range(50))
    log.close()

    written = sum(len(f.read_text().splitlines()) for f in (tmp_path / NAME).glob("*.jsonl"))
    assert written + sum(dropped) == 50
    assert sum(dropped) >= 44  # the writer may take one entry off while the rest arrive


def test_ingestion_loads_each_file_once_and_deletes_it(tmp_path: Path):
    write_batch(tmp_path, [logged("a"), logged("b")], 1)
    write_batch(tmp_path, [logged("c")], 2)
    con = duckdb.connect()

    first = ingest(con, tmp_path, NAME)
    second = ingest(con, tmp_path, NAME)

    assert (first.files, first.rows, second.files, second.rows) == (2, 3, 0, 0)
    assert con.sql(f"select request_id from {PREDICTIONS} order by 1").fetchall() == [
        ("a",),
        ("b",),
        ("c",),
    ]
    assert list((tmp_path / NAME).iterdir()) == []


def test_a_file_the_ledger_lists_is_deleted_without_loading_it_twice(tmp_path: Path):
    # A crash after the commit and before the deletion leaves the loaded file behind.
    (path,) = write_batch(tmp_path, [logged("a")], 1)
    con = duckdb.connect()
    ingest(con, tmp_path, NAME)
    path.parent.mkdir(exist_ok=True)
    write_batch(tmp_path, [logged("a")], 1)[0].rename(path)

    again = ingest(con, tmp_path, NAME)

    assert (again.files, again.already_loaded) == (0, 1)
    assert con.execute(f"select count(*) from {PREDICTIONS}").fetchone() == (1,)
    assert con.execute(f"select count(*) from {LEDGER}").fetchone() == (1,)
    assert not path.exists()


@pytest.fixture
def live_model() -> DeclaredModel:
    """The churn model judging prediction drift on live traffic."""
    drift = Drift(predictions_window="live", min_rows=30)
    return DeclaredModel(churn_spec().model_copy(update={"drift": drift}), key("features"))


@pytest.mark.integration
def test_served_predictions_are_ingested_and_are_the_live_drift_checks_current_window(
    settings: Settings, live_model: DeclaredModel
):
    registry = churn_registry(settings.models_dir)
    version = servable(registry)
    registry.promote(version)
    resources = build_resources(settings)
    with TestClient(build_server(settings, [NAME], Limits(watch_interval_s=0.05))) as client:
        for index in range(40):
            response = client.post(f"/v1/models/{NAME}/predict", json=record(index))
            assert response.status_code == 200
    # Leaving the client ran the app's shutdown: the log is flushed.

    (asset,) = serving_assets(live_model)
    result = dg.materialize([asset], resources=resources)
    check = check_prediction_drift(live_model, resources["warehouse"], resources["model_store"])

    materialization = result.asset_materializations_for_node(asset.op.name)[0]
    assert materialization.metadata["rows_loaded"].value == 40
    assert "skipped" not in check.metadata
    assert check.metadata["current_window"].value == "live"
    assert check.metadata["production_model"].value == version


def test_the_live_drift_check_says_so_when_nothing_was_ingested_yet(
    settings: Settings, live_model: DeclaredModel
):
    registry = churn_registry(settings.models_dir)
    registry.promote(servable(registry))
    resources = build_resources(settings)
    with resources["warehouse"].connect() as con:
        con.execute("select 1")

    check = check_prediction_drift(live_model, resources["warehouse"], resources["model_store"])

    assert "no live predictions ingested" in check.metadata["skipped"].value
