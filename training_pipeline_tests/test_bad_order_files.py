"""Every kind of bad order file content: a reason naming the file and the problem, the
good file beside it still loading, and landed = loaded + quarantined, exactly."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from order_file_helpers import (
    COLUMNS,
    HEADER,
    assert_quarantined_beside_the_good_file,
    ingest,
    land_good,
    order_ids,
    parquet,
    reason_file,
    reconcile_orders,
)

from training_pipeline.ingestion import landing_ingest, text_checks
from training_pipeline.settings import LandingLimits


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("orders_empty.csv", b"", "the file is empty (0 bytes)"),
        ("orders_header_only.csv", HEADER.encode(), "no data rows"),
        (
            "orders_truncated.csv",
            (HEADER + "O1,C1,x,1,new\nO2,C1,x,1,new\nO3,C1,2026-0").encode(),
            "the row ending at line 4 has 3 fields where the header has 5",
        ),
        (
            "orders_open_quote.csv",
            (HEADER + 'O1,C1,x,1,new\nO2,C1,x,"1').encode(),
            "malformed CSV at line 3: unexpected end of data",
        ),
        (
            "orders_semicolons.csv",
            b"order_id;customer_id;ordered_at;amount;status\nO1;C1;x;1;new\n",
            "the header looks ';'-delimited, but only ',' is accepted",
        ),
        (
            "orders_latin1.csv",
            (HEADER + "O1,C1,x,1,caf\xe9\n").encode("latin-1"),
            "not UTF-8 text: byte 0xe9 at line 2 (byte offset 59) is not valid UTF-8 "
            "(Latin-1 or Windows-1252 text?",
        ),
        (
            "orders_utf16.csv",
            (HEADER + "O1,C1,x,1,new\n").encode("utf-16"),
            "UTF-16 text (it starts with a UTF-16 byte-order mark); only UTF-8 is accepted",
        ),
        (
            "orders_utf16le_no_mark.csv",
            (HEADER + "O1,C1,x,1,new\n").encode("utf-16-le"),
            "a NUL byte at line 1 (byte offset 1); UTF-16 text or a binary file?",
        ),
        ("orders_garbage.csv", bytes(range(256)) * 4, "a NUL byte at line 1 (byte offset 0)"),
        (
            "orders_garbage_no_nul.csv",
            b"\x89PNG\r\n\x1a\n" + bytes(range(1, 256)) * 4,
            "byte 0x89 at line 1 (byte offset 0) is not valid UTF-8",
        ),
        ("orders_orders.xlsx", b"PK\x03\x04", "unsupported file extension '.xlsx'"),
    ],
)
def test_a_bad_text_file_is_quarantined_with_its_problem_and_the_good_file_loads(
    con, dirs, name, content, problem
):
    (dirs[0] / name).write_bytes(content)
    assert_quarantined_beside_the_good_file(con, dirs, name, problem)


def test_a_truncated_file_still_counts_its_rows_as_landed_and_quarantined(con, dirs):
    (dirs[0] / "orders_t.csv").write_text(HEADER + "O1,C1,x,1,new\nO2,C1,x\n")
    reason = assert_quarantined_beside_the_good_file(con, dirs, "orders_t.csv", "3 fields")
    assert reason["rows_landed"] == 2
    assert reconcile_orders(con).rows_quarantined == 2


def test_a_utf8_byte_order_mark_is_legitimate_and_the_file_loads(con, dirs):
    landing = dirs[0]
    (landing / "orders_bom.csv").write_bytes(
        b"\xef\xbb\xbf" + (HEADER + "O1,C1,x,1,new\n").encode()
    )
    row = {"order_id": "O2", "customer_id": "C1", "ordered_at": "x", "amount": "1", "status": "n"}
    (landing / "orders_bom.jsonl").write_bytes(b"\xef\xbb\xbf" + json.dumps(row).encode() + b"\n")
    report = ingest(con, dirs)
    assert [(o.path, o.status) for o in report.outcomes] == [
        ("orders_bom.csv", "loaded"),
        ("orders_bom.jsonl", "loaded"),
    ]
    assert order_ids(con) == ["O1", "O2"]


def test_a_json_lines_file_with_one_broken_line_is_quarantined_whole_naming_the_line(con, dirs):
    rows = [json.dumps({c: f"{c}{i}" for c in COLUMNS}) for i in range(4)]
    rows[2] = rows[2][:-7]  # cut off mid-record
    (dirs[0] / "orders_j.jsonl").write_text("\n".join(rows) + "\n")
    reason = assert_quarantined_beside_the_good_file(
        con, dirs, "orders_j.jsonl", "line 3: not valid JSON"
    )
    assert reason["rows_landed"] == 4


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('["O1", "C1"]', "line 2: not a JSON object (found list)"),
        ('{"order_id": "O1", "amount": {"value": 1}}', "line 2: column 'amount' holds a nested"),
        ('{"order_id": "O1", "amount": [1, 2]}', "line 2: column 'amount' holds a nested"),
        ('{"order_id": "O1", "amount": NaN}', "line 2: not valid JSON (NaN is not valid JSON)"),
        ('{"order_id": "O1", "order_id": "O2"}', "line 2: the keys ['order_id'] appear more"),
    ],
)
def test_a_json_record_that_is_not_a_flat_object_is_refused_naming_its_line(
    con, dirs, line, problem
):
    first = json.dumps(dict.fromkeys(COLUMNS, "x"))
    (dirs[0] / "orders_j.jsonl").write_text(f"{first}\n{line}\n")
    assert_quarantined_beside_the_good_file(con, dirs, "orders_j.jsonl", problem)


def test_json_lines_missing_a_required_column_in_every_record_are_quarantined(con, dirs):
    record = {"order_id": "O1", "customer_id": "C1", "amount": "1", "status": "new"}
    (dirs[0] / "orders_j.jsonl").write_text(json.dumps(record) + "\n")
    assert_quarantined_beside_the_good_file(
        con, dirs, "orders_j.jsonl", "missing required columns ['ordered_at']"
    )


def test_parquet_with_the_wrong_schema_is_quarantined_naming_the_missing_columns(con, dirs):
    pq.write_table(pa.table({"id": ["O1"], "total": [1.0]}), dirs[0] / "orders_p.parquet")
    assert_quarantined_beside_the_good_file(
        con, dirs, "orders_p.parquet", "missing required columns ['order_id', 'customer_id'"
    )


@pytest.mark.parametrize(
    "amount",
    [
        pa.array([{"value": 1.0, "currency": "USD"}]),
        pa.array([[1.0, 2.0]]),
        pa.array([[("k", 1)]], type=pa.map_(pa.string(), pa.int64())),
    ],
)
def test_parquet_with_a_nested_amount_is_quarantined(con, dirs, amount):
    parquet(dirs[0] / "orders_p.parquet", amount=amount)
    assert_quarantined_beside_the_good_file(
        con, dirs, "orders_p.parquet", "columns with nested (non-scalar) types: {'amount'"
    )


def test_a_scalar_type_change_is_kept_as_text_and_reported(con, dirs):
    landing = dirs[0]
    parquet(landing / "orders_p.parquet", amount=pa.array([7.25]), customer_id=pa.array([42]))
    record = dict.fromkeys(COLUMNS, "x") | {"order_id": "J1", "amount": 12.5, "status": True}
    (landing / "orders_j.jsonl").write_text(json.dumps(record) + "\n")
    report = ingest(con, dirs)
    outcomes = {o.path: o for o in report.outcomes}
    assert {o.status for o in outcomes.values()} == {"loaded"}
    assert outcomes["orders_p.parquet"].non_text_columns == ("customer_id: int64", "amount: double")
    assert outcomes["orders_j.jsonl"].non_text_columns == ("amount: number", "status: boolean")
    rows = con.execute("select order_id, customer_id, amount, status from raw.orders order by 1")
    assert rows.fetchall() == [("J1", "x", "12.5", "true"), ("order_id1", "42", "7.25", "status1")]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_extra_columns_are_loaded_past_and_reported_in_every_format(con, dirs, fmt):
    path = dirs[0] / f"orders_x.{fmt}"
    if fmt == "csv":
        path.write_text(HEADER.strip() + ",coupon,note\nO1,C1,x,1,new,SAVE10,hi\n")
    elif fmt == "jsonl":
        path.write_text(json.dumps(dict.fromkeys((*COLUMNS, "coupon", "note"), "v")) + "\n")
    else:
        parquet(path, coupon=["SAVE10"], note=["hi"])
    (outcome,) = ingest(con, dirs).outcomes
    assert outcome.status == "loaded" and outcome.extra_columns == ("coupon", "note")


def test_a_csv_with_a_required_column_twice_is_quarantined_as_ambiguous(con, dirs):
    (dirs[0] / "orders_d.csv").write_text(HEADER.strip() + ",amount\nO1,C1,x,1,new,2\n")
    assert_quarantined_beside_the_good_file(
        con, dirs, "orders_d.csv", "required columns appear more than once: ['amount']"
    )


def test_a_file_over_the_size_limit_is_quarantined_unread_naming_size_and_limit(
    con, dirs, monkeypatch
):
    huge = dirs[0] / "orders_huge.csv"
    with huge.open("wb") as handle:  # sparse: 600 MiB that take no disk and no time
        handle.truncate(600 * 1024 * 1024)
    real_sha, real_inspect = landing_ingest.sha256_of, landing_ingest.inspect_file

    def unless_huge(real):
        return lambda path, *a: pytest.fail("read") if path == huge else real(path, *a)

    monkeypatch.setattr(landing_ingest, "sha256_of", unless_huge(real_sha))
    monkeypatch.setattr(landing_ingest, "inspect_file", unless_huge(real_inspect))
    land_good(dirs[0])
    report = ingest(con, dirs, limits=LandingLimits(settle_s=0))
    assert {o.path: o.status for o in report.outcomes}["orders_huge.csv"] == "quarantined"
    reason = reason_file(dirs[1], "orders_huge.csv")
    assert reason["reason"] == (
        "the file is 629145600 bytes, over the limit of 536870912 bytes "
        "(TRAINING_PIPELINE_MAX_FILE_BYTES); it was not read"
    )
    assert reason["sha256"] == "not hashed"


def test_a_huge_single_row_is_quarantined_naming_its_line_and_the_limit(con, dirs):
    limit = LandingLimits(settle_s=0).max_line_bytes
    (dirs[0] / "orders_wide.csv").write_text(HEADER + f"O1,C1,x,{'9' * limit},new\n")
    (dirs[0] / "orders_wide.jsonl").write_text(
        json.dumps(dict.fromkeys(COLUMNS, "x") | {"amount": "9" * limit}) + "\n"
    )
    report = ingest(con, dirs)
    assert {o.status for o in report.outcomes} == {"quarantined"}
    too_long = f"is longer than {limit} bytes (at least"
    assert reason_file(dirs[1], "orders_wide.csv")["reason"].startswith(f"line 2 {too_long}")
    assert reason_file(dirs[1], "orders_wide.jsonl")["reason"].startswith(f"line 1 {too_long}")


def test_line_numbers_hold_when_a_crlf_straddles_two_read_blocks(con, dirs, monkeypatch):
    monkeypatch.setattr(text_checks, "BLOCK_BYTES", 7)
    body = "".join(f"O{i},C1,x,1,new\r\n" for i in range(1, 6)) + "O6,C1,x,1," + "n" * 80
    (dirs[0] / "orders_crlf.csv").write_text(HEADER.replace("\n", "\r\n") + body, newline="")
    limits = LandingLimits(max_line_bytes=60, settle_s=0)
    (outcome,) = ingest(con, dirs, limits=limits).outcomes
    assert outcome.reason.startswith("line 7 is longer than 60 bytes"), outcome.reason


def test_reconciliation_is_exact_over_a_batch_of_every_kind_of_bad_file(con, dirs, tmp_path):
    landing = dirs[0]
    land_good(landing)
    (landing / "orders_empty.csv").write_bytes(b"")
    (landing / "orders_header.csv").write_text(HEADER)
    (landing / "orders_trunc.csv").write_text(HEADER + "T1,C1,x,1,new\nT2,C1")
    (landing / "orders_semi.csv").write_text(HEADER.replace(",", ";") + "S1;C1;x;1;new\n")
    (landing / "orders_latin.csv").write_bytes((HEADER + "L1,C1,x,1,caf\xe9\n").encode("latin-1"))
    (landing / "orders_broken.jsonl").write_text('{"order_id": "J1"}\n{"order_id"\n')
    parquet(landing / "orders_nested.parquet", amount=pa.array([[1.0]]))
    (landing / "orders_link.csv").symlink_to(tmp_path / "elsewhere.csv")
    (landing / "orders_extra.csv").write_text(HEADER.strip() + ",x\nE1,C1,x,1,new,1\n")
    report = ingest(con, dirs)
    ledger = reconcile_orders(con)
    assert ledger.holds
    assert (ledger.files_loaded, ledger.files_quarantined) == (2, 8)
    assert (ledger.rows_landed, ledger.rows_loaded, ledger.rows_quarantined) == (9, 3, 6)
    assert (report.rows_landed, report.rows_loaded, report.rows_quarantined) == (9, 3, 6)
    assert len(report.outcomes) == 10
