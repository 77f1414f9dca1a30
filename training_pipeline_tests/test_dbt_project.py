"""The dbt project turns messy raw rows into clean marts, and loads orders incrementally.

One warehouse is built twice in a temporary data directory: a first batch of messy rows,
then a second batch that re-delivers an order with a corrected amount.  dbt runs as a
subprocess (as Dagster runs it), with its target and log paths inside the temporary
directory so concurrent test runs never share a partial-parse file or a log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from training_pipeline.project import dbt_root
from training_pipeline.settings import DBT_PROJECT_DIR, DEFAULT_PROJECT_DIR
from training_pipeline.source_declarations import systems_in

pytestmark = pytest.mark.slow
DBT = Path(sys.executable).with_name("dbt")
KEYS = {"customers": "customer_id", "orders": "order_id", "tickets": "ticket_id"}
UNTOUCHED = "tagged before the second build"
# Every declared raw table (churn's three and the weather file): the dbt build reads all
# of them, so each exists even when a test loads no rows into it.
DECLARED = {
    source.name: source
    for system in systems_in(DEFAULT_PROJECT_DIR / "defs")
    for source in system.sources
}
RAW_COLUMNS = {name: source.contract.names for name, source in DECLARED.items()}
SOURCES = {name: source.ledger for name, source in DECLARED.items()}


@dataclass(frozen=True)
class Batch:
    """One ingestion batch: raw rows per table, each ending with its ``_source_ref``."""

    number: int
    ingested_at: datetime
    rows: dict[str, list[tuple[str | None, ...]]]


# fmt: off
FIRST_BATCH = Batch(1, datetime(2026, 1, 6, 1), {
    "crm_customers": [
        ("1", "C001", "Ada Byron", "ada@old.example", "24", "GB", "smb",
         "2025-03-04", "2026-01-01 00:00:00", "crm query"),
        ("2", "C001", "Ada Lovelace", " Ada@Example.COM ", "twenty-five", " u.s. ",
         "Consumer ", "Mar 4 2025", "2026-01-02 00:00:00", "crm query"),
        ("3", "C002", "Bob Meyer", "bob@example.de", "age: 40", "deutschland", "ENT",
         "4 March 2025", "2026-01-01 00:00:00", "crm query"),
        ("4", "C003", "Cruz Vega", "not an email", "230", "españa", "SMB",
         "31/02/2026", "2026-01-01 00:00:00", "crm query"),
    ],
    "orders": [
        ("O1", "C001", "2026-01-05 15:45:00+02:00", "$1,234.50", "Completed ",
         "orders_2026-01-05.csv"),
        ("O2", "C002", "1767620700", "12.50 USD", "canceled", "orders_2026-01-05.csv"),
        # C404 has no CRM record yet: the relationships test only warns.
        ("O3", "C404", "2026/01/05 13:45:00", "EUR 5", "refunded", "orders_2026-01-05.csv"),
        # Delivered twice in one batch: the later file wins.
        ("O4", "C001", "2026-01-04T08:45:00-05:00", "5.00", "new", "orders_2026-01-04.csv"),
        ("O4", "C001", "2026-01-04T08:45:00-05:00", "6.00", "shipped",
         "orders_2026-01-05.csv"),
    ],
    "tickets": [
        ("T1", "C001", "2026-01-05T15:45:00+02:00", "2026-01-05T14:00:00Z", "Open", None,
         "EMAIL", "Login fails", "/tickets page 1"),
        ("T1", "C001", "2026-01-05T15:45:00+02:00", "2026-01-05T16:00:00Z", "solved", "4/5",
         "email", "Login fails", "/tickets page 1"),
        ("T2", "C002", "2026-01-05 09:00:00", "2026-01-05T09:30:00Z", "waiting", None,
         "Phone", "Refund?", "/tickets page 1"),
    ],
})

SECOND_BATCH = Batch(2, datetime(2026, 1, 7, 1), {
    "orders": [
        # Re-delivered with a corrected amount.
        ("O1", "C001", "2026-01-05T13:45:00Z", "$1,243.50", "completed",
         "orders_2026-01-06.jsonl"),
        ("O5", "C002", "2026-01-06T08:00:00-05:00", "7", "pending",
         "orders_2026-01-06.jsonl"),
    ],
    "tickets": [
        ("T2", "C002", "2026-01-05 09:00:00", "2026-01-06T10:00:00Z", "Closed ", "5",
         "phone", "Refund?", "/tickets page 1"),
    ],
})
# fmt: on


@dataclass(frozen=True)
class Build:
    """What one `dbt build` left behind: its outcome, run results and every mart's rows."""

    result: subprocess.CompletedProcess[str]
    run_results: dict[str, Any]
    marts: dict[str, list[dict[str, Any]]]

    def mart(self, name: str) -> dict[str, dict[str, Any]]:
        """The mart's rows by key (the last row wins; duplicates are tested separately)."""
        return {row[KEYS[name]]: row for row in self.marts[name]}

    def statuses(self, unique_id_prefix: str) -> list[str]:
        return [
            r["status"]
            for r in self.run_results["results"]
            if r["unique_id"].startswith(unique_id_prefix)
        ]


def run_dbt(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TRAINING_PIPELINE_DATA_DIR": str(data_dir),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    return subprocess.run(
        [
            str(DBT),
            *args,
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(data_dir / "dbt_target"),
            "--log-path",
            str(data_dir / "dbt_logs"),
        ],
        cwd=dbt_root(DEFAULT_PROJECT_DIR),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def load_raw(data_dir: Path, batch: Batch | None = None) -> None:
    """Create the raw tables if absent and append a batch; close before dbt opens the file."""
    data_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"))
    try:
        con.execute("create schema if not exists raw")
        for table, columns in RAW_COLUMNS.items():
            business = ", ".join(f"{c} varchar" for c in columns)
            con.execute(
                f"create table if not exists raw.{table} ({business}, _source varchar, "
                "_source_ref varchar, _batch_id varchar, _ingested_at timestamp)"
            )
            if batch is None or not batch.rows.get(table):
                continue
            source = SOURCES[table]
            provenance = (source, f"{source}-{batch.number}", batch.ingested_at)
            names = ", ".join((*columns, "_source_ref", "_source", "_batch_id", "_ingested_at"))
            marks = ", ".join("?" * (len(columns) + 4))
            con.executemany(
                f"insert into raw.{table} ({names}) values ({marks})",
                [(*row, *provenance) for row in batch.rows[table]],
            )
    finally:
        con.close()


def build(data_dir: Path) -> Build:
    """Run `dbt build`, then read its run results and every mart (read-only).

    The dbt unit tests are left out: they need no data, and test_dbt_unit_tests.py runs
    them once for the suite.
    """
    result = run_dbt(data_dir, "build", "--exclude", "test_type:unit")
    run_results = json.loads((data_dir / "dbt_target" / "run_results.json").read_text())
    marts: dict[str, list[dict[str, Any]]] = {}
    if result.returncode == 0:
        con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
        try:
            for mart in KEYS:
                cursor = con.execute(f"select * from marts.{mart}")
                names = [d[0] for d in cursor.description]
                marts[mart] = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            con.close()
    return Build(result, run_results, marts)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dbt_project") / "data"


@pytest.fixture(scope="module")
def first_build(data_dir: Path) -> Build:
    load_raw(data_dir, FIRST_BATCH)
    return build(data_dir)


@pytest.fixture(scope="module")
def second_build(data_dir: Path, first_build: Build) -> Build:
    # Tag every order already in the mart: a row the incremental run rebuilds loses its
    # tag, a row it leaves alone keeps it.
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"))
    try:
        con.execute(f"update marts.orders set _source_ref = '{UNTOUCHED}'")
    finally:
        con.close()
    load_raw(data_dir, SECOND_BATCH)
    return build(data_dir)


def test_dbt_build_succeeds_on_messy_raw_rows(first_build: Build) -> None:
    assert first_build.result.returncode == 0, first_build.result.stdout[-4000:]


def test_customers_mart_parses_the_latest_crm_record_of_each_customer(
    first_build: Build,
) -> None:
    ada = first_build.mart("customers")["C001"]
    assert ada == {
        "customer_id": "C001",
        "full_name": "Ada Lovelace",
        "email": "ada@example.com",
        "age": 25,
        "country_code": "US",
        "segment": "consumer",
        "signup_date": date(2025, 3, 4),
        "updated_at": datetime(2026, 1, 2),
        "_batch_id": "crm-1",
        "_ingested_at": FIRST_BATCH.ingested_at,
    }
    bob = first_build.mart("customers")["C002"]
    assert (bob["age"], bob["country_code"], bob["segment"], bob["signup_date"]) == (
        40,
        "DE",
        "enterprise",
        date(2025, 3, 4),
    )


def test_customers_mart_leaves_unparseable_values_null(first_build: Build) -> None:
    cruz = first_build.mart("customers")["C003"]
    assert (cruz["age"], cruz["email"], cruz["signup_date"]) == (None, None, None)
    assert (cruz["country_code"], cruz["segment"]) == ("ES", "smb")


def test_orders_mart_converts_timestamps_to_utc_and_amounts_to_dollars(
    first_build: Build,
) -> None:
    orders = first_build.mart("orders")
    assert {k: orders[k]["ordered_at"] for k in ("O1", "O2", "O3")} == dict.fromkeys(
        ("O1", "O2", "O3"), datetime(2026, 1, 5, 13, 45)
    )
    assert orders["O4"]["ordered_at"] == datetime(2026, 1, 4, 13, 45)
    assert orders["O1"]["amount"] == Decimal("1234.50")
    assert orders["O2"]["amount"] == Decimal("12.50")
    assert orders["O3"]["amount"] is None  # EUR is never converted
    assert [orders[k]["status"] for k in ("O1", "O2", "O3")] == [
        "completed",
        "cancelled",
        "returned",
    ]


def test_orders_mart_keeps_the_later_file_when_an_order_arrives_twice_in_a_batch(
    first_build: Build,
) -> None:
    o4 = first_build.mart("orders")["O4"]
    assert (o4["amount"], o4["status"], o4["_source_ref"]) == (
        Decimal("6.00"),
        "shipped",
        "orders_2026-01-05.csv",
    )


def test_tickets_mart_keeps_the_latest_state_of_each_ticket(first_build: Build) -> None:
    t1 = first_build.mart("tickets")["T1"]
    assert (t1["status"], t1["satisfaction"], t1["channel"]) == ("resolved", 4, "email")
    assert t1["created_at"] == datetime(2026, 1, 5, 13, 45)
    assert t1["updated_at"] == datetime(2026, 1, 5, 16)
    assert first_build.mart("tickets")["T2"]["status"] == "pending"


def test_an_order_placed_before_its_customer_exists_only_warns(first_build: Build) -> None:
    assert first_build.statuses("test.training_pipeline.relationships_orders_") == ["warn"]


def test_second_batch_replaces_a_redelivered_order_without_duplicating_it(
    second_build: Build,
) -> None:
    assert second_build.result.returncode == 0, second_build.result.stdout[-4000:]
    order_ids = [row["order_id"] for row in second_build.marts["orders"]]
    assert sorted(order_ids) == ["O1", "O2", "O3", "O4", "O5"]
    orders = second_build.mart("orders")
    assert orders["O1"]["amount"] == Decimal("1243.50")
    assert orders["O1"]["_batch_id"] == "order_files-2"
    assert orders["O5"]["ordered_at"] == datetime(2026, 1, 6, 13)
    assert orders["O5"]["status"] == "placed"
    assert second_build.mart("tickets")["T2"]["status"] == "closed"


def test_second_batch_rewrites_only_the_orders_it_delivers(second_build: Build) -> None:
    refs = {k: row["_source_ref"] for k, row in second_build.mart("orders").items()}
    assert refs == {
        "O1": "orders_2026-01-06.jsonl",
        "O2": UNTOUCHED,
        "O3": UNTOUCHED,
        "O4": UNTOUCHED,
        "O5": "orders_2026-01-06.jsonl",
    }
