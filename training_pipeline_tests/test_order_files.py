"""Order-file ingestion: exactly once per content, verified, bad files quarantined."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from order_file_helpers import ORDERS, reconcile_orders

from training_pipeline.ingestion.landing_ingest import ingest_landing_folder

HEADER = "order_id,customer_id,ordered_at,amount,status\n"
AT = datetime(2026, 3, 1, 12, 0, 0)


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def ingest(con: duckdb.DuckDBPyConnection, dirs: tuple[Path, Path], batch: str = "b1"):
    return ingest_landing_folder(con, ORDERS, dirs[0], dirs[1], batch, AT)


def raw_rows(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        "select order_id, amount, _source, _source_ref, _batch_id from raw.orders order by 1"
    ).fetchall()


def test_csv_jsonl_and_parquet_files_load_as_text_with_provenance(con, dirs):
    landing, _ = dirs
    write_csv(landing / "orders_2026-01-01.csv", ['O1,C1,2026-01-01T10:00:00Z,"$1,234.50",done'])
    (landing / "orders_2026-01-02.jsonl").write_text(
        json.dumps(
            {
                "order_id": "O2",
                "customer_id": "C1",
                "ordered_at": "1767620700",
                "amount": 12.5,
                "status": "new",
            }
        )
        + "\n"
    )
    pq.write_table(
        pa.table(
            {
                "order_id": ["O3"],
                "customer_id": ["C2"],
                "ordered_at": ["2026/01/03 09:00:00"],
                "amount": [7.25],
                "status": ["shipped"],
            }
        ),
        landing / "orders_2026-01-03.parquet",
    )
    report = ingest(con, dirs)
    assert [o.status for o in report.outcomes] == ["loaded"] * 3
    assert raw_rows(con) == [
        ("O1", "$1,234.50", "order_files", "orders_2026-01-01.csv", "b1"),
        ("O2", "12.5", "order_files", "orders_2026-01-02.jsonl", "b1"),
        ("O3", "7.25", "order_files", "orders_2026-01-03.parquet", "b1"),
    ]


def test_an_identical_redelivery_is_skipped_and_a_corrected_one_is_loaded(con, dirs):
    landing, _ = dirs
    path = write_csv(landing / "orders_2026-01-01.csv", ["O1,C1,2026-01-01,10.00,done"])
    ingest(con, dirs, "b1")
    second = ingest(con, dirs, "b2")
    assert [o.status for o in second.outcomes] == ["skipped"]
    write_csv(path, ["O1,C1,2026-01-01,11.00,done"])
    third = ingest(con, dirs, "b3")
    assert [o.status for o in third.outcomes] == ["loaded"]
    assert [(r[1], r[4]) for r in raw_rows(con)] == [("10.00", "b1"), ("11.00", "b3")]


def test_a_garbage_file_is_quarantined_with_a_reason_while_good_files_load(con, dirs, tmp_path):
    landing, quarantine = dirs
    write_csv(landing / "orders_2026-01-01.csv", ["O1,C1,2026-01-01,10.00,done", "O2,C2,x,1,new"])
    garbage = landing / "orders_2026-01-02.csv"
    garbage.write_bytes(bytes(range(256)) * 3)
    write_csv(landing / "orders_2026-01-03.csv", ["O3,C3,2026-01-03,3.00,done"])
    report = ingest(con, dirs)
    statuses = {o.path: o.status for o in report.outcomes}
    assert statuses == {
        "orders_2026-01-01.csv": "loaded",
        "orders_2026-01-02.csv": "quarantined",
        "orders_2026-01-03.csv": "loaded",
    }
    assert not garbage.exists()
    moved = quarantine / "b1" / "orders_2026-01-02.csv"
    assert moved.read_bytes() == bytes(range(256)) * 3
    reason = json.loads((quarantine / "b1" / "orders_2026-01-02.csv.reason.json").read_text())
    assert reason["file"] == "orders_2026-01-02.csv" and reason["reason"]
    assert [r[0] for r in raw_rows(con)] == ["O1", "O2", "O3"]


@pytest.mark.parametrize(
    ("name", "content", "reason_fragment"),
    [
        ("orders_a.csv", HEADER, "no data rows"),
        (
            "orders_b.csv",
            "order_id;customer_id;ordered_at;amount;status\nO1;C1;x;1;new\n",
            "missing required columns",
        ),
        ("orders_c.csv", "order_id,customer_id\nO1,C1\n", "missing required columns"),
        ("orders_d.csv", HEADER + "O1,C1,2026-01-01,1.00\n", "4 fields where the header has 5"),
        ("orders_e.jsonl", '{"order_id": "O1"}\n{"order_id": \n', "line 2: not valid JSON"),
        ("orders_f.parquet", "not parquet at all", "Parquet"),
        ("orders_g.txt", "hello", "unsupported file extension"),
    ],
)
def test_each_kind_of_bad_file_is_quarantined_with_a_reason_naming_the_problem(
    con, dirs, name, content, reason_fragment
):
    landing, _ = dirs
    (landing / name).write_text(content, encoding="utf-8")
    (outcome,) = ingest(con, dirs).outcomes
    assert outcome.status == "quarantined"
    assert reason_fragment in outcome.reason
    assert raw_rows(con) == []


def test_a_latin1_file_is_quarantined_as_not_utf8(con, dirs):
    landing, _ = dirs
    (landing / "orders_x.csv").write_bytes((HEADER + "O1,C1,x,1,caf\xe9\n").encode("latin-1"))
    (outcome,) = ingest(con, dirs).outcomes
    assert outcome.status == "quarantined" and "UTF-8" in outcome.reason


def test_extra_columns_are_ignored_and_reported(con, dirs):
    landing, _ = dirs
    (landing / "orders_x.csv").write_text(
        "order_id,customer_id,ordered_at,amount,status,coupon\nO1,C1,x,1,new,SAVE10\n"
    )
    (outcome,) = ingest(con, dirs).outcomes
    assert outcome.status == "loaded" and outcome.extra_columns == ("coupon",)


def test_reconciliation_holds_exactly_after_a_mix_of_good_and_bad_files(con, dirs):
    landing, _ = dirs
    write_csv(landing / "orders_1.csv", [f"O{i},C1,x,1,new" for i in range(5)])
    write_csv(landing / "orders_2.csv", ["O9,C1,x,1,new", "O10,C1,x"])  # truncated row
    write_csv(landing / "orders_3.csv", [f"P{i},C1,x,1,new" for i in range(3)])
    ingest(con, dirs)
    result = reconcile_orders(con)
    assert (result.rows_landed, result.rows_loaded, result.rows_quarantined) == (10, 8, 2)
    assert result.holds


def test_reconciliation_fails_when_raw_rows_disappear(con, dirs):
    landing, _ = dirs
    write_csv(landing / "orders_1.csv", ["O1,C1,x,1,new", "O2,C1,x,1,new"])
    ingest(con, dirs)
    con.execute("delete from raw.orders where order_id = 'O2'").fetchall()
    result = reconcile_orders(con)
    assert not result.holds
    assert result.mismatched == (("orders_1.csv", "b1", 2, 1),)


def test_dot_files_being_written_are_left_alone(con, dirs):
    landing, _ = dirs
    write_csv(landing / ".orders_1.csv.tmp", ["O1,C1,x,1,new"])
    assert ingest(con, dirs).outcomes == []
    assert (landing / ".orders_1.csv.tmp").exists()


def test_an_unchanged_file_is_not_hashed_again_on_the_next_run(con, dirs, monkeypatch):
    landing, _ = dirs
    write_csv(landing / "orders_1.csv", ["O1,C1,x,1,new"])
    ingest(con, dirs, "b1")
    hashed: list[Path] = []
    monkeypatch.setattr(
        "training_pipeline.ingestion.landing_ingest.sha256_of", lambda p: hashed.append(p) or "x"
    )
    assert [o.status for o in ingest(con, dirs, "b2").outcomes] == ["skipped"]
    assert hashed == []


def test_a_rewrite_with_the_same_size_and_an_old_mtime_is_still_ingested(con, dirs):
    landing, _ = dirs
    path = write_csv(landing / "orders_1.csv", ["O1,C1,x,1,new"])
    before = path.stat()
    ingest(con, dirs, "b1")
    write_csv(path, ["O1,C1,x,2,new"])  # same length, different content
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size
    assert [o.status for o in ingest(con, dirs, "b2").outcomes] == ["loaded"]
    assert [r[1] for r in raw_rows(con)] == ["1", "2"]


def test_jsonl_and_parquet_timestamps_with_zones_load_as_text_keeping_the_offset(con, dirs):
    landing, _ = dirs
    rows = [
        {
            "order_id": f"O{i}",
            "customer_id": "C1",
            "ordered_at": f"2026-01-0{i}T10:00:00+02:00",
            "amount": "1.00",
            "status": "done",
        }
        for i in range(1, 4)
    ]
    (landing / "orders_1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (outcome,) = ingest(con, dirs).outcomes
    assert outcome.status == "loaded", outcome.reason
    loaded = con.execute("select ordered_at from raw.orders order by 1").fetchall()
    assert loaded == [(f"2026-01-0{i}T10:00:00+02:00",) for i in range(1, 4)]


def test_a_nested_value_where_a_scalar_is_required_is_quarantined(con, dirs):
    landing, _ = dirs
    row = {
        "order_id": "O1",
        "customer_id": "C1",
        "ordered_at": "x",
        "amount": {"value": 1, "currency": "USD"},
        "status": "done",
    }
    (landing / "orders_1.jsonl").write_text(json.dumps(row) + "\n")
    (outcome,) = ingest(con, dirs).outcomes
    assert outcome.status == "quarantined" and "nested" in outcome.reason
