"""The customers and tickets marts are built incrementally, and come out exactly as a
full rebuild of the same raw rows would.

Batches arrive one build at a time: CRM changes (a newer record, and a late record
older than the one already current), ticket versions; then the marts are rebuilt in
full on a copy of the warehouse and compared row for row.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from test_dbt_project import FIRST_BATCH, Batch, load_raw, run_dbt

pytestmark = pytest.mark.e2e
MARTS = ("customers", "tickets", "orders")

# fmt: off
CHANGES = Batch(2, datetime(2026, 1, 7, 1), {
    "crm_customers": [
        # C002 changes segment: the newer record wins.
        ("5", "C002", "Bob Meyer", "bob@example.de", "41", "DE", "SMB",
         "2025-03-04", "2026-01-06 00:00:00", "crm query"),
        # A late record for C001, older than the current one: it must not win.
        ("6", "C001", "Ada Old", "old@example.com", "20", "GB", "smb",
         "2025-03-04", "2025-12-01 00:00:00", "crm query"),
    ],
    "tickets": [
        ("T1", "C001", "2026-01-05T15:45:00+02:00", "2026-01-06T09:00:00Z", "closed", "5",
         "email", "Login fails", "/tickets page 2"),
        ("T3", "C003", "2026-01-06T10:00:00Z", "2026-01-06T10:00:00Z", "open", None,
         "chat", "Refund?", "/tickets page 2"),
    ],
})
MORE = Batch(3, datetime(2026, 1, 8, 1), {
    "crm_customers": [
        ("7", "C004", "Dan New", "dan@example.com", "33", "US", "consumer",
         "2026-01-07", "2026-01-07 12:00:00", "crm query"),
    ],
    "tickets": [],
})
# fmt: on


def _rows(data_dir: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        return {m: con.execute(f"select * from marts.{m} order by all").fetchall() for m in MARTS}
    finally:
        con.close()


def _build(data_dir: Path, *args: str) -> None:
    result = run_dbt(data_dir, "run", "--select", "staging", "marts", *args)
    assert result.returncode == 0, result.stdout[-4000:]


def _full_rebuild_of_a_copy(data_dir: Path, tmp_path: Path) -> dict[str, list[tuple]]:
    copy = tmp_path / "full" / "data"
    copy.mkdir(parents=True)
    shutil.copyfile(data_dir / "warehouse.duckdb", copy / "warehouse.duckdb")
    _build(copy, "--full-refresh")
    return _rows(copy)


def _drop_ingested_at(data_dir: Path) -> None:
    """Make the marts look as they did before they were incremental."""
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"))
    try:
        for mart in ("customers", "tickets"):
            con.execute(f"alter table marts.{mart} drop column _ingested_at")
    finally:
        con.close()


def test_incremental_customers_and_tickets_equal_a_full_rebuild(tmp_path: Path) -> None:
    data_dir = tmp_path / "incremental" / "data"
    load_raw(data_dir, FIRST_BATCH)
    _build(data_dir)
    load_raw(data_dir, CHANGES)
    _build(data_dir)  # incremental: only the rows of CHANGES are read
    customers = {row[0]: row for row in _rows(data_dir)["customers"]}
    assert customers["C001"][1] == "Ada Lovelace"  # the late, older record did not win
    assert customers["C002"][5] == "smb"
    # A warehouse from before these marts were incremental has no _ingested_at: the next
    # build reads everything once and adds the column.
    _drop_ingested_at(data_dir)
    load_raw(data_dir, MORE)
    _build(data_dir)
    incremental = _rows(data_dir)
    assert "C004" in {row[0] for row in incremental["customers"]}
    assert incremental == _full_rebuild_of_a_copy(data_dir, tmp_path)
