"""Poison inputs (issue 15, cases 1, 2, 3, 4 and 8): one bad row or file never blocks the
pipeline, and wrong data never loads silently.  Each test reproduces the reported case."""

from __future__ import annotations

import errno
import json
import os
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from order_file_helpers import (
    AT,
    COLUMNS,
    GOOD,
    HEADER,
    assert_quarantined_beside_the_good_file,
    ingest,
    land_good,
    materialize_orders,
    open_warehouse,
    order_ids,
    reconcile_orders,
)

from training_pipeline.ingestion import landing_ingest, quarantine


def rejected(con) -> list[tuple]:
    return con.execute(
        "select source, raw_table, source_ref, record_number, column_name, value, rule "
        "from raw.rejected_rows order by source_ref, record_number"
    ).fetchall()


# Case 1 -------------------------------------------------------------------------------


def test_a_parquet_file_with_columns_differing_only_by_case_is_quarantined_naming_them(con, dirs):
    # Regression: DuckDB renamed `order_id` to `order_id_1` and the case-insensitive
    # match loaded ORDER_ID's WRONG1/WRONG2 as the order ids, silently.
    columns = {"ORDER_ID": ["WRONG1", "WRONG2"], "order_id": ["A1", "A2"]}
    columns |= {c: [f"{c}1", f"{c}2"] for c in COLUMNS if c != "order_id"}
    pq.write_table(pa.table(columns), dirs[0] / "orders_case.parquet")
    reason = assert_quarantined_beside_the_good_file(
        con, dirs, "orders_case.parquet", "ambiguous column names: 'ORDER_ID' and 'order_id'"
    )
    assert reason["rows_landed"] == 2
    assert "WRONG1" not in order_ids(con)


@pytest.mark.parametrize(
    ("name", "content", "names"),
    [
        (
            "orders_case.csv",
            "order_id,customer_id,ordered_at,amount,status,Status\nA1,C1,x,1,new,old\n",
            "'status' and 'Status'",
        ),
        (
            "orders_case.jsonl",
            json.dumps(dict.fromkeys(COLUMNS, "v") | {"Amount": "9"}) + "\n",
            "'amount' and 'Amount'",
        ),
        (
            "orders_twice.csv",
            "order_id,customer_id,ordered_at,amount,status,note,note\nA1,C1,x,1,new,a,b\n",
            "'note' and 'note'",
        ),
    ],
)
def test_ambiguous_column_names_quarantine_csv_and_json_lines_files_too(
    con, dirs, name, content, names
):
    (dirs[0] / name).write_text(content, encoding="utf-8")
    assert_quarantined_beside_the_good_file(con, dirs, name, f"ambiguous column names: {names}")


# Case 2 -------------------------------------------------------------------------------


def test_a_blank_key_row_is_rejected_with_its_place_and_the_rest_of_the_file_loads(con, dirs):
    # Regression: the row loaded, the not_null test on stg_shop__orders.order_id then
    # failed every run from then on, with 24 steps skipped.
    (dirs[0] / "orders_blank.csv").write_text(
        HEADER
        + "B1,C000001,2026-02-27T11:00:00Z,$7.00,completed\n"
        + ",C000005,2026-02-27T11:00:00Z,$7.00,completed\n"
        + "B3,C000002,2026-02-27T12:00:00Z,$1.00,completed\n",
        encoding="utf-8",
    )
    (dirs[0] / "orders_empty_object.jsonl").write_text(
        json.dumps(dict(zip(COLUMNS, ("J1", "C1", "2026-02-01", "1", "new"), strict=True)))
        + "\n{}\n",
        encoding="utf-8",
    )
    report = ingest(con, dirs)
    assert {o.path: (o.status, o.rows_loaded, o.rows_rejected) for o in report.outcomes} == {
        "orders_blank.csv": ("loaded", 2, 1),
        "orders_empty_object.jsonl": ("loaded", 1, 1),
    }
    assert order_ids(con) == ["B1", "B3", "J1"]
    assert rejected(con) == [
        ("order_files", "orders", "orders_blank.csv", 2, "order_id", None, "blank_key"),
        ("order_files", "orders", "orders_empty_object.jsonl", 2, "order_id", None, "blank_key"),
    ]
    ((row_json,),) = con.execute(
        "select row_json from raw.rejected_rows where source_ref = 'orders_blank.csv'"
    ).fetchall()
    assert json.loads(row_json)["customer_id"] == "C000005"  # the whole row is kept
    ledger = reconcile_orders(con)
    assert ledger.holds
    assert (ledger.rows_landed, ledger.rows_loaded, ledger.rows_rejected) == (5, 3, 2)


def test_the_reconciliation_fails_when_a_rejected_row_disappears_from_the_ledger(con, dirs):
    (dirs[0] / "orders_blank.csv").write_text(HEADER + "B1,C1,x,1,new\n ,C2,x,1,new\n")
    ingest(con, dirs)
    assert reconcile_orders(con).holds
    con.execute("delete from raw.rejected_rows").fetchall()
    ledger = reconcile_orders(con)
    assert not ledger.holds
    assert ledger.mismatched_rejections == (("orders_blank.csv", "b1", 1, 0),)


# Case 3 -------------------------------------------------------------------------------


def test_a_bad_file_with_a_name_too_long_for_its_reason_file_is_quarantined_all_the_same(con, dirs):
    # Regression: `.<name>.reason.json.tmp` exceeded 255 bytes (Errno 36), the good file
    # beside it was not loaded, every rerun failed and empty batch folders remained.
    name = "orders_c1_" + "L" * 226 + ".csv"
    (dirs[0] / name).write_bytes(HEADER.encode() + b"A1,C1,x,1,\x00new\n")
    land_good(dirs[0])
    report = ingest(con, dirs)
    assert {o.path: o.status for o in report.outcomes} == {GOOD: "loaded", name: "quarantined"}
    batch = dirs[1] / "b1"
    (reason_file,) = [p for p in batch.iterdir() if p.name.endswith(quarantine.REASON_SUFFIX)]
    assert len(reason_file.name.encode()) < 64
    reason = json.loads(reason_file.read_text())
    assert (reason["file"], reason["name"]) == (name, name)
    assert "NUL byte at line 2" in reason["reason"]
    assert (batch / name).exists() and not (dirs[0] / name).exists()
    assert order_ids(con) == ["G1", "G2"]
    assert ingest(con, dirs, "b2").recovered == []  # the hashed reason file is understood
    assert reconcile_orders(con).holds


def test_a_crash_after_a_long_named_file_moved_is_recorded_on_the_next_run(con, dirs, monkeypatch):
    from training_pipeline.ingestion import manifest

    name = "orders_" + "M" * 240 + ".csv"
    (dirs[0] / name).write_bytes(b"\x00")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(manifest, "write_manifest", crash)
    with pytest.raises(KeyboardInterrupt):
        ingest(con, dirs)
    monkeypatch.undo()
    assert [o.path for o in ingest(con, dirs, "b2").recovered] == [name]


def test_a_quarantine_that_fails_leaves_no_empty_batch_folder(con, dirs, monkeypatch):
    (dirs[0] / "orders_bad.csv").write_bytes(b"\x00")
    real_replace = os.replace

    def refuse_the_move(src, dst):
        if Path(src).name == "orders_bad.csv":
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(quarantine.os, "replace", refuse_the_move)
    with pytest.raises(OSError, match="No space left"):
        ingest(con, dirs)
    monkeypatch.undo()
    assert not dirs[1].exists() or not any(dirs[1].rglob("*"))


def test_empty_batch_folders_a_crash_left_behind_are_removed(con, dirs):
    (dirs[1] / "b0" / "_2").mkdir(parents=True)
    (dirs[1] / "b9").mkdir()
    (dirs[1] / "b9" / "kept.csv").write_text("x")
    ingest(con, dirs)
    assert sorted(p.name for p in dirs[1].iterdir()) == ["b9"]


# Case 4 -------------------------------------------------------------------------------


def test_a_far_future_order_date_is_rejected_and_messy_valid_dates_load(con, dirs):
    # Regression: one ordered_at of 2099-12-31 loaded and stretched the snapshot grid
    # to 2100 (705 s, 8.2 GB spilled); training and the drift check then failed.
    rows = [
        ("F1", "2099-12-31T10:00:00Z"),
        ("F2", "2026-01-05T13:45:00Z"),
        ("F3", "2026-01-05 15:45:00+02:00"),
        ("F4", "2026-01-05T08:45:00-05:00"),
        ("F5", "2026/01/05 13:45:00"),
        ("F6", "1767620700"),
        ("F7", "2026-03-02T11:00:00Z"),  # within the 24 h tolerance of AT
        ("F8", "not a date"),  # unreadable: staging nulls and counts it, not a breach
        ("F9", "1899-12-31 23:00:00+00:00"),  # outside the grammar's years: null, kept
        ("F10", "1900-01-01 00:30:00+01:00"),  # 1899-12-31 23:30 UTC: before 1900
    ]
    body = "".join(f"{oid},C1,{at},$1,586.31,completed\n" for oid, at in rows)
    (dirs[0] / "orders_future.csv").write_text(HEADER + body.replace("$1,586.31", '"$1,586.31"'))
    report = ingest(con, dirs)
    (outcome,) = report.outcomes
    assert (outcome.rows_loaded, outcome.rows_rejected) == (8, 2)
    assert [(r[3], r[5], r[6]) for r in rejected(con)] == [
        (1, "2099-12-31T10:00:00Z", "timestamp_out_of_range"),
        (10, "1900-01-01 00:30:00+01:00", "timestamp_out_of_range"),
    ]
    (detail,) = con.execute(
        "select detail from raw.rejected_rows where record_number = 1"
    ).fetchone()
    upper = AT + timedelta(hours=24)
    assert "2099-12-31 10:00:00" in detail and f"{upper:%Y-%m-%d %H:%M:%S}" in detail


# Case 8 -------------------------------------------------------------------------------


def test_a_semicolon_file_with_thousands_commas_is_named_semicolon_delimited(con, dirs):
    # Regression: the commas inside "$1,586.31" split the rows, and the reason read
    # "truncated or malformed" instead of naming the delimiter.
    (dirs[0] / "orders_semi.csv").write_text(
        "order_id;customer_id;ordered_at;amount;status\n"
        "S1;C1;2026-01-05T13:45:00Z;$1,586.31;completed\n"
        "S2;C2;2026-01-05T13:45:00Z;$12.00;completed\n"
    )
    reason = assert_quarantined_beside_the_good_file(
        con, dirs, "orders_semi.csv", "the header looks ';'-delimited, but only ',' is accepted"
    )
    assert "truncated" not in reason["reason"]
    assert reason["rows_landed"] == 2


# The check and the alert ------------------------------------------------------------


def materialize_orders_in(tmp_path: Path):
    data = tmp_path / "data"
    return materialize_orders(data, data / "landing", data / "quarantine", raise_on_error=False)


def check_evaluation(result, name: str):
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    return evaluation


def alert_lines(tmp_path: Path) -> list[dict]:
    log = tmp_path / "data" / "alerts" / "alerts.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.integration
def test_a_few_rejected_rows_warn_and_alert_and_the_run_goes_on(tmp_path):
    landing = tmp_path / "data" / "landing"
    landing.mkdir(parents=True)
    rows = "".join(f"W{i},C1,2026-01-05,1,new\n" for i in range(1, 40))
    (landing / "orders_w.csv").write_text(HEADER + rows + ",C1,2026-01-05,1,new\n")
    result = materialize_orders_in(tmp_path)
    assert result.success
    evaluation = check_evaluation(result, "rows_rejected")
    assert not evaluation.passed and evaluation.severity.value == "WARN"
    assert evaluation.metadata["by_rule"].value == {"blank_key": 1}
    (alert,) = alert_lines(tmp_path)
    assert (alert["kind"], alert["check_name"]) == ("rows_rejected", "rows_rejected")
    assert "1 of 40 rows rejected" in alert["message"]
    assert "orders_w.csv record 40" in alert["error_summary"]
    assert check_evaluation(result, "rows_reconcile").passed


@pytest.mark.integration
def test_more_than_the_allowed_share_rejected_blocks_downstream(tmp_path):
    landing = tmp_path / "data" / "landing"
    landing.mkdir(parents=True)
    (landing / "orders_x.csv").write_text(HEADER + "X1,C1,x,1,new\n,C1,x,1,new\n")
    result = materialize_orders_in(tmp_path)
    assert not result.success  # the step fails on the blocking check, after committing
    evaluation = check_evaluation(result, "rows_rejected")
    assert not evaluation.passed and evaluation.severity.value == "ERROR"
    assert evaluation.blocking
    assert alert_lines(tmp_path) == []  # the run-failure sensor alerts for a block
    with open_warehouse(tmp_path / "data") as con:
        assert order_ids(con) == ["X1"]  # the valid row loaded; the next batch starts clean


# The new-data sensor ------------------------------------------------------------------


def test_a_far_future_stamp_does_not_blind_the_sensor_to_later_changes(tmp_path):
    # A CRM record or ticket dated 2099 is rejected by ingestion; taken as the newest
    # stamp, it would hide every real change after it from the sensor for good.
    import sqlalchemy as sa
    from test_crm_database import add_records, churn_crm, customers_table

    from training_pipeline.automation.probes import newest_plausible, sql_high_water_mark

    url = f"sqlite:///{tmp_path / 'crm.sqlite'}"
    engine = sa.create_engine(url)
    table = customers_table(sa.MetaData())
    table.metadata.create_all(engine)
    now = datetime(2026, 3, 1, 12, 0)
    add_records(engine, table, [(1, "C1", "25", datetime(2099, 12, 31, 10, 0))])
    add_records(engine, table, [(2, "C2", "25", datetime(2026, 3, 1, 9, 0))])
    assert sql_high_water_mark(churn_crm(), url, until=now) == "2026-03-01 09:00:00"
    add_records(engine, table, [(3, "C3", "25", datetime(2026, 3, 1, 11, 0))])
    assert sql_high_water_mark(churn_crm(), url, until=now) == "2026-03-01 11:00:00"
    engine.dispose()
    stamps = ["2026-03-01T09:00:00Z", "2026-03-01T10:00:00+00:00", "2099-12-31T10:00:00Z"]
    assert newest_plausible(stamps, now) == "2026-03-01T10:00:00+00:00"
    assert newest_plausible(["2099-12-31T10:00:00Z"], now) is None


@pytest.mark.parametrize(
    ("code", "quarantined"), [(errno.EACCES, True), (errno.EMFILE, False), (errno.EIO, False)]
)
def test_only_an_os_error_about_the_file_itself_quarantines_it(
    con, dirs, monkeypatch, code, quarantined
):
    # A fault of the machine reading the file (too many open files, an I/O error) must
    # fail the run and leave the delivery in the landing folder for the next one.
    land_good(dirs[0])
    (dirs[0] / "orders_fault.csv").write_text(HEADER + "F1,C1,x,1,new\n")
    real_inspect = landing_ingest.inspect_file

    def fault_on_one_file(path, *args, **kwargs):
        if Path(path).name == "orders_fault.csv":
            raise OSError(code, os.strerror(code))
        return real_inspect(path, *args, **kwargs)

    monkeypatch.setattr(landing_ingest, "inspect_file", fault_on_one_file)
    if quarantined:
        reason = assert_quarantined_beside_the_good_file(
            con, dirs, "orders_fault.csv", os.strerror(code)
        )
        assert reason["reason"].startswith("the file cannot be read")
    else:
        with pytest.raises(OSError, match=os.strerror(code)):
            ingest(con, dirs)
        assert (dirs[0] / "orders_fault.csv").exists()
        assert not dirs[1].exists() or not any(dirs[1].rglob("orders_fault.csv"))
