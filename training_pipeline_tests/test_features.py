"""features.customer_snapshots: point-in-time churn features and labels.

One demo world (400 customers, 150 days) goes through the real ingestion code (order
files, the CRM database, the ticket API over HTTP) and dbt builds the model.  Then 35
more days arrive, the same way, together with hand-made raw rows dated exactly at the
newest weekly snapshot S of the first build, and dbt builds again (incrementally).
Nothing dated before S changed, so no feature of a snapshot up to S may change; only
labels may.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from churn_demo import declared
from churn_demo.api_server import DemoApiServer
from churn_demo.generator import generate
from order_file_helpers import ORDERS
from test_crm_database import CRM

from training_pipeline.ingestion import warehouse as wh
from training_pipeline.ingestion.http_api import ensure_source_table, ingest_http
from training_pipeline.ingestion.landing_ingest import ingest_landing_folder
from training_pipeline.ingestion.sql_table import extract_table
from training_pipeline.project import dbt_root
from training_pipeline.settings import DBT_PROJECT_DIR, DEFAULT_PROJECT_DIR, Settings
from training_pipeline_tests.churn_model import CHURN
from training_pipeline_tests.http_source_helpers import churn_tickets, tickets_client

pytestmark = pytest.mark.slow
DBT = Path(sys.executable).with_name("dbt")
LATE_ORDER_AMOUNT = 99_999
FRIDAY = 4  # the weekly grid runs every 7 days from Friday 1970-01-02
# Raw columns by table, from the sources' declarations.
RAW_COLUMNS = {
    "orders": ORDERS.contract.names,
    "crm_customers": CRM.contract.names,
    "tickets": churn_tickets().contract.names,
}
Rows = dict[tuple[str, date], dict[str, Any]]


@dataclass(frozen=True)
class World:
    settings: Settings
    snapshot: date  # S: the newest weekly (Friday) snapshot of the first build
    customer: str  # X: active at S, the target of the rows dated exactly at S
    first: Rows
    second: Rows

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        con = duckdb.connect(str(self.settings.warehouse_path), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def order_dates(self) -> tuple[date, date]:
        """The first order date and as_of, the day after the newest order."""
        [(first, newest)] = self.query(
            "select cast(min(ordered_at) as date), cast(max(ordered_at) as date) from marts.orders"
        )
        return first, newest + timedelta(days=1)


def ingest(settings: Settings, api_url: str, ingested_at: datetime) -> None:
    tag = f"{ingested_at:%Y%m%d}"
    with wh.connect(settings.warehouse_path, limits=settings.duckdb) as con:
        wh.ensure_raw_layer(con)
        ingest_landing_folder(
            con,
            ORDERS,
            declared.orders_landing(settings),
            declared.orders_quarantine(settings),
            f"orders-{tag}",
            ingested_at,
        )
        with wh.transaction(con):
            extract_table(
                con,
                CRM,
                declared.crm_url(settings),
                batch_id=f"crm-{tag}",
                ingested_at=ingested_at,
                limits=settings.row_contract,
            )
        ensure_source_table(con, churn_tickets())
        with tickets_client(api_url, page_size=1000) as client, wh.transaction(con):
            ingest_http(
                con,
                client,
                batch_id=f"tickets-{tag}",
                ingested_at=ingested_at,
                limits=settings.row_contract,
            )


def build(settings: Settings) -> Rows:
    """`dbt build` the model and its parents (tests whose parents all are selected).

    The dbt unit tests are test_dbt_unit_tests.py's subject and need no data.
    """
    result = subprocess.run(
        [
            str(DBT), "build", "--select", "+customer_snapshots",
            "--indirect-selection", "cautious", "--exclude", "test_type:unit",
            "--profiles-dir", str(DBT_PROJECT_DIR),
            "--target-path", str(settings.data_dir / "dbt_target"),
            "--log-path", str(settings.data_dir / "dbt_logs"),
        ],
        cwd=dbt_root(DEFAULT_PROJECT_DIR),
        env={**os.environ, "TRAINING_PIPELINE_DATA_DIR": str(settings.data_dir)},
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        cursor = con.execute("select * from features.customer_snapshots")
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()
    return {(r["customer_id"], r["snapshot_date"]): r for r in rows}


def add_rows_dated_at(
    settings: Settings, snapshot: date, customer: str, ingested_at: datetime
) -> None:
    """An order, a CRM record and a rated ticket version of X, all at S's midnight."""
    at = datetime.combine(snapshot, datetime.min.time())
    with wh.connect(settings.warehouse_path, limits=settings.duckdb) as con:
        # The ticket X opened last before S, as the API delivered it.
        ticket, created_at, channel, subject = con.execute(
            "select ticket_id, created_at, channel, subject from raw.tickets "
            "where ticket_id = (select max_by(ticket_id, created_at) "
            "  from staging.stg_support__ticket_versions "
            "  where customer_id = $1 and created_at < $2) limit 1",
            [customer, at],
        ).fetchall()[0]
        rows = {
            "orders": [
                "O-AT-S", customer, f"{at:%Y-%m-%dT%H:%M:%SZ}", f"${LATE_ORDER_AMOUNT:,}.00",
                "done",
            ],
            "crm_customers": [
                "999999", customer, "Late Record", "late@example.com", "age: 99", "FR",
                "ENT", "2020-01-01", f"{at:%Y-%m-%d %H:%M:%S}",
            ],
            "tickets": [
                ticket, customer, created_at, f"{at:%Y-%m-%dT%H:%M:%SZ}", "solved", "1/5",
                channel, subject,
            ],
        }  # fmt: skip
        for table, values in rows.items():
            names = ", ".join((*RAW_COLUMNS[table], *wh.PROVENANCE_COLUMNS))
            marks = ", ".join("?" * (len(values) + 4))
            con.execute(
                f"insert into raw.{table} ({names}) values ({marks})",
                [*values, "test", "hand-made", "late", ingested_at],
            ).fetchall()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("features") / "data"
    settings = Settings(data_dir)
    generate(settings, days=150, customers=400, seed=3)
    with DemoApiServer(settings, host="127.0.0.1", port=0) as server:
        ingest(settings, server.url, datetime(2026, 6, 1))
        first = build(settings)
        snapshot = max(day for _, day in first if day.weekday() == FRIDAY)
        # X ordered in the 90 days before S and has a ticket; take the first such.
        customer = min(c for (c, day), r in first.items() if day == snapshot and r["tickets_90d"])
        generate(settings, days=35)  # 5 weeks later: as_of moves, S stays on the grid
        ingest(settings, server.url, datetime(2026, 7, 6))
    add_rows_dated_at(settings, snapshot, customer, datetime(2026, 7, 6))
    yield World(settings, snapshot, customer, first, build(settings))


def features(rows: Rows, up_to: date) -> dict[tuple[str, date], tuple]:
    return {
        key: tuple(row[c] for c in CHURN.columns if c != CHURN.label)
        for key, row in rows.items()
        if key[1] <= up_to
    }


def test_the_second_batch_brings_data_dated_at_and_after_the_snapshot(world: World) -> None:
    # Without these the leakage tests would compare two builds of the same input.
    s, x = world.snapshot, world.customer
    first_as_of = max(day for _, day in world.first)
    assert first_as_of - s < timedelta(days=7)
    assert max(day for _, day in world.second) == first_as_of + timedelta(days=35)
    [row] = world.query(
        "select"
        " (select count(*) from marts.orders where ordered_at >= $1),"
        " (select count(*) from staging.stg_support__ticket_versions"
        "  where updated_at >= $1 and created_at < $1),"
        " (select count(*) from staging.stg_crm__customer_versions where updated_at >= $1)",
        [s],
    )
    counts = dict(zip(("orders", "ticket_versions", "crm_records"), row, strict=True))
    assert min(counts.values()) > 10, counts
    # The hand-made rows at S's midnight were loaded and parsed.
    assert world.query(
        "select"
        " (select amount from marts.orders where customer_id = $2 and ordered_at = $1),"
        " (select satisfaction from staging.stg_support__ticket_versions"
        "  where customer_id = $2 and updated_at = $1),"
        " (select segment from staging.stg_crm__customer_versions"
        "  where customer_id = $2 and updated_at = $1)",
        [s, x],
    ) == [(LATE_ORDER_AMOUNT, 1, "enterprise")]


def test_features_of_snapshots_up_to_s_do_not_change_when_later_data_arrives(
    world: World,
) -> None:
    before = features(world.first, world.snapshot)
    after = features(world.second, world.snapshot)
    assert len(before) > 1000
    assert after.keys() == before.keys()  # the population is point-in-time too
    assert after == before
    # The labels of S were unobservable in the first build and are known now.
    labels = [world.second[key]["churned"] for key in before if key[1] == world.snapshot]
    assert {world.first[key]["churned"] for key in before if key[1] == world.snapshot} == {None}
    assert set(labels) == {True, False}


def test_an_order_exactly_at_the_snapshot_instant_counts_for_the_label_not_the_features(
    world: World,
) -> None:
    x, s = world.customer, world.snapshot
    at_s = world.second[(x, s)]
    assert at_s["recency_days"] >= 1
    assert at_s["spend_30d"] < LATE_ORDER_AMOUNT
    # Only the label moved: the late CRM record and ticket rating did not count either.
    assert at_s == {**world.first[(x, s)], "churned": False}
    week_later = world.second[(x, s + timedelta(days=7))]
    assert week_later["spend_30d"] >= LATE_ORDER_AMOUNT
    assert week_later["recency_days"] <= 7


def test_the_model_has_the_spec_columns_in_order_with_fitting_types(world: World) -> None:
    columns = world.query(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'features' and table_name = 'customer_snapshots' "
        "order by ordinal_position"
    )
    assert tuple(name for name, _ in columns) == CHURN.columns
    types = dict(columns)
    numeric = ("INTEGER", "BIGINT", "DOUBLE", "DECIMAL")
    assert [c for c in CHURN.numeric if not types[c].startswith(numeric)] == []
    assert {types[c] for c in (CHURN.id_column, *CHURN.categorical)} == {"VARCHAR"}
    assert (types[CHURN.time_column], types[CHURN.label]) == ("DATE", "BOOLEAN")


def test_snapshots_fall_on_fridays_with_90_days_of_history_and_on_the_day_after_the_newest_order(
    world: World,
) -> None:
    first, as_of = world.order_dates()
    expected = {as_of}
    day = first + timedelta(days=90)
    while day < as_of:
        if day.weekday() == FRIDAY:
            expected.add(day)
        day += timedelta(days=1)
    assert {day for _, day in world.second} == expected


def test_every_customer_who_ordered_in_the_90_days_before_a_snapshot_has_a_row(
    world: World,
) -> None:
    # The demo never has an order before its customer's signup, so no one is left out.
    active = world.query(
        "select distinct o.customer_id, s.snapshot_date "
        "from (select distinct snapshot_date from features.customer_snapshots) as s "
        "join marts.orders as o on o.ordered_at < s.snapshot_date "
        "and o.ordered_at >= s.snapshot_date - interval 90 day"
    )
    assert set(world.second) == set(active)


def test_churned_is_true_exactly_when_no_order_falls_in_the_30_days_from_the_snapshot(
    world: World,
) -> None:
    labelled = {k: r["churned"] for k, r in world.second.items() if r["churned"] is not None}
    ordered_within_30_days = {
        (customer, day)
        for customer, day in world.query(
            "select distinct f.customer_id, f.snapshot_date "
            "from features.customer_snapshots as f join marts.orders as o "
            "on o.customer_id = f.customer_id and o.ordered_at >= f.snapshot_date "
            "and o.ordered_at < f.snapshot_date + interval 30 day"
        )
    }
    assert set(labelled.values()) == {True, False}
    assert {k for k, churned in labelled.items() if not churned} == (
        ordered_within_30_days & labelled.keys()
    )


def test_snapshots_whose_30_days_pass_the_newest_data_have_no_label(world: World) -> None:
    _, as_of = world.order_dates()
    by_day: dict[date, set] = {}
    for (_, day), row in world.second.items():
        by_day.setdefault(day, set()).add(row["churned"] is None)
    assert by_day[as_of] == {True}
    assert all(
        unlabelled == {day + timedelta(days=30) > as_of} for day, unlabelled in by_day.items()
    )


def test_churned_customers_had_gone_quiet_longer_at_a_plausible_churn_rate(world: World) -> None:
    labelled = [r for r in world.second.values() if r["churned"] is not None]
    churned = [r["recency_days"] for r in labelled if r["churned"]]
    stayed = [r["recency_days"] for r in labelled if not r["churned"]]
    assert 0.05 < len(churned) / len(labelled) < 0.60
    assert sum(churned) / len(churned) > sum(stayed) / len(stayed)
