"""Feature and prediction drift: synthetic frames for the verdicts and the demo's
``--drift`` day.  The real pipeline's thresholds (a normal day is no drift error, the
demo's drifted day is one, naming the columns it moves) are pinned in
test_end_to_end.py, on the world it builds anyway."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import churn_model
import duckdb
import numpy as np
import pandas as pd
import pytest
from churn_demo import cli, declared, ticket_store, writers
from churn_demo.generator import generate, load_state, state_path
from churn_demo.world import DayParams, World, WorldConfig
from scipy import stats

from training_pipeline.ml.datasets import current_window, latest_snapshot
from training_pipeline.ml.drift import (
    feature_drift,
    monitored_columns,
    prediction_drift,
    reference_snapshots,
    too_few_rows,
)
from training_pipeline.ml.problem import DriftSettings
from training_pipeline.settings import Settings
from training_pipeline_tests.churn_model import CHURN

MONITORED = monitored_columns(CHURN)
training_set = churn_model.asset("training_set")


def stratified(rng: np.random.Generator, quantile: Callable, n: int) -> np.ndarray:
    """``n`` values spread exactly like the distribution, shuffled: two such samples differ
    by far less than random samples would, so no verdict hangs on sampling noise."""
    return rng.permutation(quantile((np.arange(n) + 0.5) / n))


def customers(rng: np.random.Generator, n: int, shifted: tuple[str, ...] = ()) -> pd.DataFrame:
    """Feature rows of one fixed distribution; ``shifted`` columns moved two s.d. off it."""
    frame = pd.DataFrame({"customer_id": [f"C{i:06d}" for i in range(n)]})
    for k, column in enumerate(CHURN.numeric):
        mean = 10.0 * (k + 1) + 6.0 * (column in shifted)
        frame[column] = stratified(rng, stats.norm(mean, 3.0).ppf, n)
    countries = np.array(["US", "DE", "GB"])
    frame["country_code"] = countries[stratified(rng, lambda q: np.digitize(q, [0.5, 0.8]), n)]
    segments = np.array(["smb", "consumer"] if "segment" in shifted else ["consumer", "smb"])
    frame["segment"] = segments[stratified(rng, lambda q: (q >= 0.8).astype(int), n)]
    return frame


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_tenure_days_is_left_out_of_the_monitored_features_because_it_grows_with_time():
    assert "tenure_days" not in MONITORED
    assert set(MONITORED) == set(CHURN.features) - {"tenure_days"}


def test_two_samples_of_one_distribution_have_severity_none(rng):
    result = feature_drift(customers(rng, 3000), customers(rng, 1500), CHURN)
    assert result.severity == "none"
    assert (result.n_drifted, result.n_columns, result.drifted_share) == (0, 13, 0.0)
    assert set(result.columns) == set(MONITORED)
    assert result.columns["segment"].method == "jensenshannon"
    assert result.columns["spend_30d"].method == "wasserstein"
    assert all(c.score < c.threshold == 0.1 for c in result.columns.values())


def test_a_few_shifted_columns_give_a_warning_naming_exactly_those(rng):
    shifted = ("spend_30d", "open_tickets", "segment")
    result = feature_drift(customers(rng, 3000), customers(rng, 1500, shifted), CHURN)
    assert result.severity == "warn"
    assert set(result.drifted_columns) == set(shifted)
    assert result.drifted_share == pytest.approx(3 / 13)


def test_most_columns_shifted_give_an_error(rng):
    shifted = MONITORED[:7]
    result = feature_drift(customers(rng, 3000), customers(rng, 1500, shifted), CHURN)
    assert result.severity == "error"
    assert (result.n_drifted, result.drifted_share) == (7, pytest.approx(7 / 13))


def test_the_error_level_starts_at_the_share_asked_for(rng):
    reference, current = customers(rng, 3000), customers(rng, 1500, ("age", "segment"))
    assert feature_drift(reference, current, CHURN).severity == "warn"
    assert feature_drift(reference, current, CHURN, drift_share_error=0.15).severity == "error"
    only_two = feature_drift(reference, current, CHURN, columns=["age", "segment", "orders_30d"])
    assert (only_two.n_columns, only_two.severity) == (3, "error")


def test_a_shifted_tenure_alone_is_not_drift(rng):
    result = feature_drift(customers(rng, 3000), customers(rng, 1500, ("tenure_days",)), CHURN)
    assert result.severity == "none"


def test_the_html_report_is_self_contained_and_states_the_verdict(rng):
    result = feature_drift(customers(rng, 2000), customers(rng, 800, MONITORED[:7]), CHURN)
    page = result.html
    assert "<html" in page.lower() and "Feature drift: ERROR" in page
    assert not re.search(r"<script[^>]*\ssrc\s*=", page, re.IGNORECASE)
    assert not re.search(r"<link[^>]*href\s*=\s*[\"']?(https?:)?//", page, re.IGNORECASE)


def test_metadata_is_plain_json_with_every_column(rng):
    reference = customers(rng, 2000)
    current = customers(rng, 800, ("spend_90d",))
    current.loc[:5, "mean_satisfaction_90d"] = np.nan  # nulls are left out, not NaN scores
    metadata = feature_drift(reference, current, CHURN).to_metadata()
    assert json.loads(json.dumps(metadata, allow_nan=False)) == metadata
    assert metadata["severity"] == "warn" and metadata["drifted_columns"] == ["spend_90d"]
    assert metadata["columns"]["spend_90d"]["drifted"] is True
    assert set(metadata["columns"]) == set(MONITORED)
    assert (metadata["reference_rows"], metadata["current_rows"]) == (2000, 800)


def test_prediction_drift_detects_a_shifted_score_distribution(rng):
    reference = stratified(rng, stats.beta(2, 6).ppf, 3000)
    steady = prediction_drift(reference, stratified(rng, stats.beta(2, 6).ppf, 1000), CHURN)
    shifted = prediction_drift(
        reference, pd.Series(stratified(rng, stats.beta(4, 4).ppf, 1000)), CHURN
    )
    assert (steady.severity, steady.n_columns) == ("none", 1)
    assert shifted.severity == "error" and shifted.drifted_columns == ("churn_probability",)
    assert (
        shifted.columns["churn_probability"].score > 5 * steady.columns["churn_probability"].score
    )


def test_drift_is_not_judged_while_either_window_has_fewer_rows_than_min_rows():
    settings = DriftSettings(min_rows=30)
    assert too_few_rows(400, 30, settings) is None
    current_short = too_few_rows(400, 8, settings)
    assert current_short is not None and "current 8" in current_short
    assert "reference" not in current_short.split("(")[0]
    both = too_few_rows(29, 1, settings)
    assert both is not None and "reference 29, current 1" in both


def test_the_current_window_is_the_newest_periods_labelled_or_not():
    spec = replace(CHURN, drift=replace(CHURN.drift, current_periods=2))
    con = duckdb.connect()
    columns = ", ".join(f"null::double as {c}" for c in spec.numeric)
    categories = ", ".join(f"null::varchar as {c}" for c in spec.categorical)
    con.execute("create schema features")
    con.execute(
        f"create table {spec.relation} as select customer_id, snapshot_date, "
        f"case when snapshot_date < date '2026-01-15' then false end as {spec.label}, "
        f"{columns}, {categories} from (values ('C1', date '2026-01-01'), "
        "('C1', date '2026-01-08'), ('C2', date '2026-01-08'), ('C1', date '2026-01-15'))"
        " t(customer_id, snapshot_date)"
    )
    window = current_window(con, spec)
    assert [str(d.date()) for d in window[spec.time_column]] == [
        "2026-01-08", "2026-01-08", "2026-01-15"
    ]  # fmt: skip
    assert spec.label not in window.columns
    assert len(latest_snapshot(con, spec)) == 1  # scoring keeps the newest period only


def test_decimals_and_dates_as_read_from_the_training_parquet_are_compared(rng):
    start = date(2026, 3, 2)
    weeks = [customers(rng, 300).assign(snapshot_date=start + timedelta(weeks=w)) for w in range(6)]
    training = pd.concat(weeks, ignore_index=True)
    training["spend_30d"] = [Decimal(f"{v:.2f}") for v in training["spend_30d"]]
    reference = reference_snapshots(training, CHURN)
    assert sorted(set(reference["snapshot_date"])) == [
        start + timedelta(weeks=w) for w in (2, 3, 4, 5)
    ]
    assert feature_drift(reference, customers(rng, 500), CHURN).severity == "none"


def test_a_missing_or_empty_column_is_a_clear_error(rng):
    reference = customers(rng, 500)
    with pytest.raises(ValueError, match=r"current data has no column \['age'\]"):
        feature_drift(reference, customers(rng, 200).drop(columns="age"), CHURN)
    with pytest.raises(ValueError, match=r"current data has no values in \['age'\]"):
        feature_drift(reference, customers(rng, 200).assign(age=np.nan), CHURN)
    with pytest.raises(ValueError, match="not features of the spec"):
        feature_drift(reference, customers(rng, 200), CHURN, columns=["churned"])


# The demo's --drift day ------------------------------------------------------------------


def settings_for(data_dir: Path) -> Settings:
    return Settings(data_dir)


def landed(settings: Settings) -> dict[str, bytes]:
    files = [*sorted(declared.orders_landing(settings).iterdir()), state_path(settings)]
    return {path.name: path.read_bytes() for path in files}


def crm(settings: Settings) -> list[dict]:
    engine = writers.crm_engine(declared.crm_url(settings))
    try:
        return writers.read_crm_records(engine)
    finally:
        engine.dispose()


def test_a_drifted_day_is_recorded_in_the_state_and_replayed_when_days_are_added(tmp_path):
    batched = settings_for(tmp_path / "batched")
    generate(batched, 5, customers=150, seed=7)
    generate(batched, 1, drift=True)
    generate(batched, 1)
    generate(batched, 1)
    assert load_state(batched).drift_days == (5,)
    assert json.loads(state_path(batched).read_text())["drift_days"] == [5]
    # The same eight days simulated in memory, the sixth drifted: each source must match,
    # which it cannot if a later call replays day 5 as a normal day.
    world, records = World.bootstrap(WorldConfig(seed=7, customers=150))
    expected, tickets = tmp_path / "expected", []
    for day in range(8):
        events = world.step(DayParams(drift=day == 5))
        fmt = writers.order_file_format(events.day)
        writers.write_order_file(expected, events.date, fmt, events.orders)
        records += events.crm_records
        tickets += events.tickets
    files = {p.name: p.read_bytes() for p in expected.iterdir()}
    assert {k: v for k, v in landed(batched).items() if k != "state.json"} == files
    assert [
        (r["record_id"], r["customer_id"], r["segment"], r["country"]) for r in crm(batched)
    ] == [(r.record_id, r.customer_id, r.segment, r.country) for r in records]
    stored = ticket_store.all_versions(ticket_store.ticket_store_path(batched))
    assert [(t["updated_at"], t["ticket_id"], t["status"]) for t in stored] == sorted(
        (t.updated_at, t.ticket_id, t.status) for t in tickets
    )
    normal = settings_for(tmp_path / "normal")
    generate(normal, 8, customers=150, seed=7)
    assert "drift_days" not in json.loads(state_path(normal).read_text())
    differ = sorted(name for name, data in landed(normal).items() if files.get(name) != data)
    assert differ[0] == "orders_2026-01-06.parquet"  # day 5: the days before are untouched


def test_a_drifted_day_bills_in_cents_files_complaints_and_rewrites_profiles():
    days = []
    for drift in (False, True):
        world, _ = World.bootstrap(WorldConfig(seed=3, customers=400))
        for _ in range(20):
            world.step()
        days.append(world.step(DayParams(drift=drift)))
    normal, drifted = days
    median = [np.median([o.amount for o in d.orders]) for d in days]
    assert median[1] > 30 * median[0]
    assert len(drifted.tickets) > 5 * len(normal.tickets)
    assert len(drifted.crm_records) > 100 + len(normal.crm_records)
    segments = [r.segment.strip().lower() for r in drifted.crm_records]
    assert segments.count("smb") > 0.6 * len(segments)


def test_an_interrupted_drifted_day_is_finished_as_drifted(tmp_path):
    whole, interrupted = settings_for(tmp_path / "whole"), settings_for(tmp_path / "crashed")
    generate(whole, 3, customers=100, seed=2)
    generate(whole, 1, drift=True)
    generate(interrupted, 3, customers=100, seed=2)
    # A drifted run that recorded its day and died before writing any source.
    crashed = replace(load_state(interrupted), drift_days=(3,))
    state_path(interrupted).write_text(crashed.to_json(), encoding="utf-8")
    generate(interrupted, 1)
    assert landed(interrupted) == landed(whole)
    assert crm(interrupted) == crm(whole)


def test_the_cli_appends_a_drifted_day(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINING_PIPELINE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("TRAINING_PIPELINE_CRM_URL", raising=False)
    assert cli.main(["world", "--customers", "20", "--days", "2", "--seed", "9"]) == 0
    assert cli.main(["world", "--days", "1", "--drift"]) == 0
    assert cli.main(["world", "--days", "1"]) == 0
    state = json.loads((tmp_path / "demo" / "state.json").read_text())
    assert (state["days_generated"], state["drift_days"]) == (4, [2])
