"""features.customer_snapshots is built incrementally and comes out exactly as a full
rebuild of the same raw rows would.

A first batch brings 120 days of orders, CRM records and tickets; then batches arrive
one build at a time: new days (as_of moves, the previous as_of snapshot leaves the
grid), a late order dated in the past, a re-delivered order moved to an earlier date, a
CRM version update and a late ticket version.  After every build the table is compared
row for row with a full rebuild of a copy of the warehouse.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from test_dbt_project import Batch, load_raw, run_dbt

pytestmark = pytest.mark.slow
CUSTOMERS = ("C001", "C002", "C003", "C004")
START = date(2025, 6, 1)


def _order(order_id: str, customer: str, day: date, amount: str = "10.00") -> tuple:
    return (order_id, customer, f"{day} 12:00:00", amount, "completed", f"orders_{day}.csv")


LATE_ORDER = Batch(5, datetime(2026, 1, 7, 4), {
    "orders": [_order("LATE", "C003", date(2025, 11, 10), "500.00")],
})  # fmt: skip


def _history() -> Batch:
    """Every customer orders every 3 to 6 days from START; the newest order is on Jan 5."""
    orders = []
    for n, customer in enumerate(CUSTOMERS):
        day = START + timedelta(days=n)
        while day <= date(2026, 1, 5):
            orders.append(_order(f"O{customer}-{day}", customer, day))
            day += timedelta(days=3 + n)
    orders.append(_order("LAST", "C001", date(2026, 1, 5)))
    # fmt: off
    return Batch(1, datetime(2026, 1, 6, 1), {
        "orders": orders,
        "crm_customers": [
            (str(n), customer, f"Name {n}", f"c{n}@example.com", "30", "US", "consumer",
             "2025-05-01", "2025-05-01 00:00:00", "crm query")
            for n, customer in enumerate(CUSTOMERS, start=1)
        ],
        "tickets": [
            ("T1", "C001", "2025-11-02T10:00:00Z", "2025-11-02T10:00:00Z", "open", None,
             "email", "Login fails", "/tickets page 1"),
        ],
    })


def _batches() -> list[Batch]:
    """One kind of change per batch, so that each must be caught on its own."""
    return [
        Batch(2, datetime(2026, 1, 7, 1), {"orders": [_order("N1", "C001", date(2026, 1, 6))]}),
        # C002 moves to enterprise as of Dec 1 (a CRM version written in the past).
        Batch(3, datetime(2026, 1, 7, 2), {
            "crm_customers": [
                ("9", "C002", "Name 2", "c2@example.com", "31", "DE", "enterprise",
                 "2025-05-01", "2025-12-01 08:00:00", "crm query"),
            ],
        }),
        # T1 was rated 1 on Nov 20; only now is that version ingested.
        Batch(4, datetime(2026, 1, 7, 3), {
            "tickets": [
                ("T1", "C001", "2025-11-02T10:00:00Z", "2025-11-20T10:00:00Z", "closed", "1",
                 "email", "Login fails", "/tickets page 2"),
            ],
        }),
        # Late: dated two months back, it changes features and labels then.
        LATE_ORDER,
        # A re-delivered order moves from Nov 1 to Jan 7: where it was changes too.
        Batch(6, datetime(2026, 1, 8, 1), {
            "orders": [
                _order("N2", "C002", date(2026, 1, 7)),
                _order("OC004-2025-11-01", "C004", date(2026, 1, 7), "42.00"),
            ],
        }),
        # Nine days in one batch: the grid gains a Friday, as_of moves past it.
        Batch(7, datetime(2026, 1, 17, 1), {
            "orders": [
                _order(f"D{n}", CUSTOMERS[n % 4], date(2026, 1, 8) + timedelta(days=n))
                for n in range(9)
            ],
        }),
    ]  # fmt: skip


def _snapshots(data_dir: Path) -> list[tuple]:
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute("select * from features.customer_snapshots order by all").fetchall()
    finally:
        con.close()


def _build(data_dir: Path, *args: str) -> None:
    result = run_dbt(data_dir, "run", "--select", "+customer_snapshots", *args)
    assert result.returncode == 0, result.stdout[-4000:]


def _full_rebuild_of_a_copy(data_dir: Path, tmp_path: Path) -> list[tuple]:
    """Each time into the same folder, over the last copy: dbt's profile names the
    warehouse's path, so only there does its saved parse hold for the next rebuild (a
    new folder each time re-parsed the whole project: 4.7 s more CPU over the test)."""
    copy = tmp_path / "full" / "data"
    copy.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(data_dir / "warehouse.duckdb", copy / "warehouse.duckdb")
    _build(copy, "--full-refresh")
    return _snapshots(copy)


def _execute(data_dir: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_incremental_snapshots_equal_a_full_rebuild_after_every_batch(tmp_path: Path) -> None:
    data_dir = tmp_path / "incremental" / "data"
    load_raw(data_dir, _history())
    _build(data_dir)
    first = _snapshots(data_dir)
    assert {row[1] for row in first} >= {date(2025, 12, 5), date(2026, 1, 2), date(2026, 1, 6)}
    for batch in _batches():
        load_raw(data_dir, batch)
        _build(data_dir)
        full = _full_rebuild_of_a_copy(data_dir, tmp_path)
        assert _snapshots(data_dir) == full, f"after batch {batch.number}"
    days = sorted({row[1] for row in _snapshots(data_dir)})
    # The grid is fixed Fridays plus as_of, the day after the newest order (Jan 16).
    assert days[-3:] == [date(2026, 1, 9), date(2026, 1, 16), date(2026, 1, 17)]
    assert {day.weekday() for day in days[:-1]} == {4}


def test_an_incremental_build_leaves_snapshots_no_new_row_can_change(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    load_raw(data_dir, _history())
    _build(data_dir)
    # A mark on a snapshot long before anything the next batch touches (its earliest
    # row, the Nov 10 order, changes snapshots from Oct 11 on).
    _execute(
        data_dir,
        "update features.customer_snapshots set age = -1 "
        "where snapshot_date = (select min(snapshot_date) from features.customer_snapshots)",
    )
    load_raw(data_dir, LATE_ORDER)
    _build(data_dir)
    [(marked_age,)] = _execute(
        data_dir,
        "select distinct age from features.customer_snapshots "
        "where snapshot_date = (select min(snapshot_date) from features.customer_snapshots)",
    )
    assert marked_age == -1
    # A full refresh reads everything again.
    _build(data_dir, "--full-refresh")
    assert -1 not in {row[-4] for row in _snapshots(data_dir)}
