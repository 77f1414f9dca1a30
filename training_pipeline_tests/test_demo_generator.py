"""The demo generator: deterministic, incremental, messy as the contract says, churn-bearing."""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from churn_demo import cli, declared, messy, ticket_store, writers
from churn_demo.generator import generate, generate_if_missing, load_state
from churn_demo.population import ACTIVE, SEGMENTS
from churn_demo.world import World, WorldConfig
from postgres_databases import throwaway_database, url_text

from training_pipeline.settings import Settings


@pytest.fixture(autouse=True)
def _crm_in_the_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """The declared CRM falls back to <data dir>/crm.sqlite when its variable is unset."""
    monkeypatch.delenv("TRAINING_PIPELINE_CRM_URL", raising=False)


def settings_for(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir)


def order_files(settings: Settings) -> list[Path]:
    return sorted(declared.orders_landing(settings).iterdir())


def read_order_file(path: Path) -> list[dict]:
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return pq.read_table(path).to_pylist()


def crm_rows(settings: Settings) -> list[dict]:
    engine = writers.crm_engine(declared.crm_url(settings))
    try:
        return writers.read_crm_records(engine)
    finally:
        engine.dispose()


def file_bytes(settings: Settings) -> dict[str, bytes]:
    files = order_files(settings) + [settings.demo_dir / "state.json"]
    return {path.name: path.read_bytes() for path in files}


def assert_same_world(a: Settings, b: Settings) -> None:
    assert file_bytes(a) == file_bytes(b)
    assert crm_rows(a) == crm_rows(b)
    versions = ticket_store.all_versions(ticket_store.ticket_store_path(a))
    assert versions == ticket_store.all_versions(ticket_store.ticket_store_path(b))
    assert versions, "a world without tickets would make the comparison vacuous"
    assert ticket_store.all_tickets(ticket_store.ticket_store_path(a)) == (
        ticket_store.all_tickets(ticket_store.ticket_store_path(b))
    )


def _simulate(customers: int, days: int, seed: int) -> tuple[World, list]:
    world, _ = World.bootstrap(WorldConfig(seed=seed, customers=customers))
    return world, [world.step() for _ in range(days)]


def _number(customer_id: str) -> int:
    return int(customer_id[1:]) - 1


@pytest.fixture(scope="module")
def medium_world(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Large enough that every rare messy variant shows up at least once."""
    settings = settings_for(tmp_path_factory.mktemp("medium"))
    generate(settings, 30, customers=400, seed=42)
    return settings


def test_the_same_seed_gives_byte_identical_files_and_equal_databases(tmp_path):
    first, second = settings_for(tmp_path / "a"), settings_for(tmp_path / "b")
    generate(first, 10, customers=120, seed=7)
    generate(second, 10, customers=120, seed=7)
    assert_same_world(first, second)


def test_ten_days_in_one_call_equal_five_days_plus_five(tmp_path):
    whole, halves = settings_for(tmp_path / "whole"), settings_for(tmp_path / "halves")
    generate(whole, 10, customers=120, seed=3)
    generate(halves, 5, customers=120, seed=3)
    generate(halves, 5)
    assert_same_world(whole, halves)
    assert load_state(halves).days_generated == 10


def test_a_different_seed_gives_different_data(tmp_path):
    one, other = settings_for(tmp_path / "one"), settings_for(tmp_path / "other")
    generate(one, 3, customers=120, seed=1)
    generate(other, 3, customers=120, seed=2)
    assert file_bytes(one) != file_bytes(other)


def test_an_interrupted_day_is_regenerated_exactly_when_run_again(tmp_path):
    clean, interrupted = settings_for(tmp_path / "clean"), settings_for(tmp_path / "crashed")
    generate(clean, 6, customers=120, seed=5)
    generate(interrupted, 5, customers=120, seed=5)
    # Simulate a run that wrote day 6 to the CRM and the ticket store, then died.
    crashed_world, _ = World.bootstrap(WorldConfig(seed=5, customers=120))
    day6 = [crashed_world.step() for _ in range(6)][-1]
    engine = writers.crm_engine(declared.crm_url(interrupted))
    writers.insert_crm_records(engine, day6.crm_records)
    engine.dispose()
    ticket_store.apply_day(ticket_store.ticket_store_path(interrupted), day6.day, day6.tickets)
    generate(interrupted, 1)
    assert_same_world(clean, interrupted)


def test_an_existing_world_refuses_another_seed_or_size(tmp_path):
    settings = settings_for(tmp_path)
    generate(settings, 1, customers=20, seed=1)
    with pytest.raises(ValueError, match="seed=1, not 2"):
        generate(settings, 1, seed=2)
    with pytest.raises(ValueError, match="customers=20, not 30"):
        generate(settings, 1, customers=30)


def test_generate_if_missing_does_nothing_once_state_exists(tmp_path):
    settings = settings_for(tmp_path)
    assert generate_if_missing(settings, 2, customers=20) is not None
    before = file_bytes(settings)
    assert generate_if_missing(settings, 2) is None
    assert file_bytes(settings) == before


def test_the_cli_creates_then_appends_and_if_missing_skips(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINING_PIPELINE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("TRAINING_PIPELINE_CRM_URL", raising=False)
    assert cli.main(["world", "--customers", "20", "--days", "2", "--seed", "9"]) == 0
    assert cli.main(["world", "--days", "3"]) == 0
    assert cli.main(["world", "--if-missing", "--days", "50"]) == 0
    state = json.loads((tmp_path / "demo" / "state.json").read_text())
    assert (state["seed"], state["customers"], state["days_generated"]) == (9, 20, 5)
    assert state["start_date"] == "2026-01-01" and state["last_date"] == "2026-01-05"
    assert cli.main(["world", "--seed", "10"]) == 2


def test_order_files_rotate_formats_and_each_is_valid_in_its_format(medium_world):
    files = order_files(medium_world)
    assert [p.name for p in files[:3]] == [
        "orders_2026-01-01.csv",
        "orders_2026-01-02.jsonl",
        "orders_2026-01-03.parquet",
    ]
    assert len(files) == 30 and not [p for p in files if p.name.startswith(".")]
    for path in files:
        rows = read_order_file(path)
        assert rows and all(list(row) == list(writers.ORDER_COLUMNS) for row in rows)
    schema = pq.read_schema(files[2])
    assert schema.field("amount").type == pa.float64()
    assert {schema.field(c).type for c in ("order_id", "ordered_at", "status")} == {pa.string()}


def test_later_files_redeliver_orders_of_the_previous_day(medium_world):
    files = order_files(medium_world)
    redelivered = 0
    for previous, current in zip(files, files[1:], strict=False):
        before = {row["order_id"] for row in read_order_file(previous)}
        ids = [row["order_id"] for row in read_order_file(current)]
        assert len(ids) == len(set(ids)), "duplicates come from an earlier file, not within one"
        redelivered += len(before.intersection(ids))
    assert redelivered >= 10


def test_every_messy_order_variant_of_the_contract_appears(medium_world):
    orders = [row for path in order_files(medium_world) for row in read_order_file(path)]
    all_statuses = {v for variants in messy.ORDER_STATUS_VARIANTS.values() for v in variants}
    assert {row["status"] for row in orders} == all_statuses
    timestamps = {row["ordered_at"] for row in orders}
    for shape in (
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+0\d:00",
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-0\d:00",
        r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d",
        r"17\d{8}",
    ):
        assert any(re.fullmatch(shape, t) for t in timestamps), shape
    amounts = [row["amount"] for row in orders]
    assert any(isinstance(a, str) and re.fullmatch(r"\$\d{1,3}(,\d{3})+\.\d\d", a) for a in amounts)
    assert any(isinstance(a, str) and re.fullmatch(r"\d+\.\d\d USD", a) for a in amounts)
    assert any(isinstance(a, str) and re.fullmatch(r"\d+\.\d\d?", a) for a in amounts)  # CSV
    assert any(isinstance(a, float) for a in amounts)  # JSON number or Parquet float


def test_every_messy_crm_variant_of_the_contract_appears(medium_world):
    rows = crm_rows(medium_world)
    ages = [row["age"] for row in rows]
    for shape in (
        r"\d+", r"[a-z]+-[a-z]+", r"[a-z]+ [a-z]+", r"age: \d+", r"\d+ yrs", r"\d+ years", r"",
        r"\s+", r"-\d", r"(1[2-9]|2\d)\d",
    ):  # fmt: skip
        assert any(re.fullmatch(shape, age) for age in ages), shape
    countries = {v for variants in messy.COUNTRY_VARIANTS.values() for v in variants}
    assert {row["country"] for row in rows} == countries
    segments = {v for variants in messy.SEGMENT_VARIANTS.values() for v in variants}
    assert {row["segment"] for row in rows} == segments
    for shape in (
        r"\d{4}-\d\d-\d\d", r"\d{4}/\d\d/\d\d", r"[A-Z][a-z]{2} \d{1,2} \d{4}",
        r"\d{1,2} [A-Z][a-z]+ \d{4}",
    ):  # fmt: skip
        assert any(re.fullmatch(shape, row["signup_date"]) for row in rows), shape
    emails = [row["email"] for row in rows]
    assert any(e != e.strip() for e in emails) and any(e != e.lower() for e in emails)
    assert any(e == e.strip().lower() for e in emails)


def test_every_messy_ticket_variant_of_the_contract_appears(medium_world):
    tickets = ticket_store.all_versions(ticket_store.ticket_store_path(medium_world))
    # The store keeps every version, so even statuses a ticket has left are served.
    served = {t["status"] for t in tickets}
    assert served == {v for variants in messy.TICKET_STATUS_VARIANTS.values() for v in variants}
    scores = [t["satisfaction"] for t in tickets]
    assert None in scores and any(isinstance(s, int) for s in scores)
    assert any(isinstance(s, str) and s.isdigit() for s in scores)
    assert any(isinstance(s, str) and re.fullmatch(r"[1-5]/5", s) for s in scores)
    channels = {t["channel"] for t in tickets}
    assert {c.lower() for c in channels} == {"email", "phone", "chat"}
    assert any(c != c.lower() for c in channels) and any(c == c.lower() for c in channels)
    created = [t["created_at"] for t in tickets]
    assert any(c.endswith("Z") for c in created)
    assert any(re.fullmatch(r"[\d-]+T[\d:]+", c) for c in created)
    assert any(re.fullmatch(r"[\d-]+T[\d:]+[+-]\d\d:\d\d", c) for c in created)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t["updated_at"]) for t in tickets)


def test_crm_appends_records_with_later_updated_at_for_repeated_customers(medium_world):
    rows = crm_rows(medium_world)
    assert [r["record_id"] for r in rows] == list(range(1, len(rows) + 1))
    times = [r["updated_at"] for r in rows]
    assert all(isinstance(t, datetime) for t in times) and times == sorted(times)
    repeats = Counter(r["customer_id"] for r in rows)
    assert sum(1 for n in repeats.values() if n > 1) >= 20
    signed_up_later = [r for r in rows if r["customer_id"] > "C000400"]
    assert signed_up_later and min(r["updated_at"] for r in signed_up_later) >= datetime(2026, 1, 1)


def test_new_days_append_ticket_versions_and_keep_the_earlier_ones(tmp_path):
    settings = settings_for(tmp_path)
    path = ticket_store.ticket_store_path(settings)
    generate(settings, 5, customers=150, seed=11)
    versions_before = ticket_store.all_versions(path)
    before = {t["ticket_id"]: t for t in ticket_store.all_tickets(path)}
    generate(settings, 5)
    versions_after = ticket_store.all_versions(path)
    after = {t["ticket_id"]: t for t in ticket_store.all_tickets(path)}
    assert versions_after[: len(versions_before)] == versions_before
    assert len(versions_after) > len(versions_before)
    assert min(v["updated_at"] for v in versions_after[len(versions_before) :]) > max(
        v["updated_at"] for v in versions_before
    )
    # The current state is each ticket's latest version.
    latest = {v["ticket_id"]: v for v in versions_after}
    assert after == latest
    assert set(before) < set(after)
    changed = [i for i in before if after[i] != before[i]]
    assert changed
    for ticket_id in changed:
        assert after[ticket_id]["updated_at"] > before[ticket_id]["updated_at"]
        assert after[ticket_id]["created_at"] == before[ticket_id]["created_at"]
    assert any(before[i]["satisfaction"] is None and after[i]["satisfaction"] for i in changed)


def test_no_two_versions_of_a_ticket_share_an_updated_at():
    _, days = _simulate(1500, 180, seed=13)
    history: dict[str, list[str]] = {}
    for events in days:
        for row in events.tickets:
            history.setdefault(row.ticket_id, []).append(row.updated_at)
    assert max(len(times) for times in history.values()) >= 4
    for ticket_id, times in history.items():
        assert times == sorted(set(times)), ticket_id


def test_the_store_rejects_a_second_version_of_a_ticket_at_the_same_second(tmp_path):
    path = tmp_path / "tickets.sqlite"
    ticket_store.create_store(path)
    _, days = _simulate(120, 2, seed=3)
    first = days[0].tickets[0]
    with pytest.raises(sqlite3.IntegrityError):
        ticket_store.apply_day(path, 0, [first, replace(first, status="pending")])
    assert ticket_store.all_versions(path) == []  # the day's transaction rolled back


def test_churned_customers_place_no_more_orders():
    world, days = _simulate(800, 120, seed=4)
    churn_day = world.population.churn_day
    assert (churn_day >= 0).sum() > 50
    late = [
        o.customer_id
        for events in days
        for o in events.orders[: len(events.orders) - events.redelivered]
        if 0 <= churn_day[_number(o.customer_id)] <= events.day
    ]
    assert late == []


def test_customers_with_low_satisfaction_churn_and_go_quiet_more_often():
    world, days = _simulate(1500, 150, seed=1)
    low, ordered_late = set(), set()
    for events in days:
        if events.day < 120:
            low |= {
                _number(t.customer_id)
                for t in events.tickets
                if t.satisfaction is not None and int(str(t.satisfaction)[0]) <= 2
            }
        else:
            ordered_late |= {_number(o.customer_id) for o in events.orders}
    population = world.population
    had_low = np.zeros(len(population), dtype=bool)
    had_low[sorted(low)] = True
    churned = population.stage != ACTIVE
    assert churned[had_low].mean() > 2 * churned[~had_low].mean()
    # What the label sees: no order in the last 30 days, among the initial customers.
    quiet = np.ones(len(population), dtype=bool)
    quiet[sorted(ordered_late)] = False
    initial = np.arange(len(population)) < 1500
    assert quiet[had_low & initial].mean() > 1.4 * quiet[~had_low & initial].mean()
    by_segment = [churned[population.segment == s].mean() for s in range(len(SEGMENTS))]
    assert by_segment[SEGMENTS.index("enterprise")] < by_segment[SEGMENTS.index("consumer")]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throw-away database on the local PostgreSQL server, dropped afterwards."""
    with throwaway_database("tp_demo") as url:
        yield url_text(url)


@pytest.mark.postgres
def test_the_crm_on_postgres_holds_the_same_records_as_on_sqlite(
    tmp_path, postgres_url, monkeypatch
):
    on_sqlite = settings_for(tmp_path / "sqlite")
    on_postgres = settings_for(tmp_path / "postgres")
    generate(on_sqlite, 6, customers=40, seed=8)
    expected = [
        r | {"updated_at": r["updated_at"].replace(tzinfo=UTC)} for r in crm_rows(on_sqlite)
    ]
    # The CRM declaration's variable moves the demo's CRM, as it moves the pipeline's.
    monkeypatch.setenv("TRAINING_PIPELINE_CRM_URL", postgres_url)
    assert declared.crm_url(on_postgres) == postgres_url
    generate(on_postgres, 4, customers=40, seed=8)
    generate(on_postgres, 2)
    assert crm_rows(on_postgres) == expected
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        column_type = conn.execute(
            sa.text(
                "select data_type from information_schema.columns "
                "where table_name = 'customers' and column_name = 'updated_at'"
            )
        ).scalar_one()
    engine.dispose()
    assert column_type == "timestamp with time zone"
