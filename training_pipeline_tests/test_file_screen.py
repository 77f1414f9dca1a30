"""DuckDB validates each order file; the Python scan runs only to explain or to judge.

A clean file never reaches the record-by-record Python scan; what DuckDB accepts but the
rules refuse (a trailing delimiter, a ``null`` line, NaN, a nested value) is sent to the
scan, so the reasons and the ledger stay what they were when every file was scanned.
"""

from __future__ import annotations

import json

import pytest
from order_file_helpers import (
    COLUMNS,
    HEADER,
    assert_quarantined_beside_the_good_file,
    ingest,
    parquet,
    reconcile_orders,
)

from training_pipeline.ingestion import file_screen


def _record(**values: object) -> str:
    return json.dumps(dict.fromkeys(COLUMNS, "x") | values)


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files the Python scan was run on, by name."""
    scanned: list[str] = []
    real = file_screen.scan_file

    def recording(path, *args, **kwargs):
        scanned.append(path.name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(file_screen, "scan_file", recording)
    return scanned


def test_clean_files_in_every_format_are_read_by_duckdb_alone(con, dirs, scans):
    landing = dirs[0]
    (landing / "orders_a.csv").write_text(HEADER + 'O1,C1,x,"$1,234.50",new\nO2,C1,x,1,new\n')
    (landing / "orders_b.jsonl").write_text(
        _record(order_id="O3", amount=12.5) + "\n\n" + _record(order_id="O4", coupon="c") + "\n"
    )
    parquet(landing / "orders_c.parquet", order_id=["O5"])
    report = ingest(con, dirs)
    assert [o.status for o in report.outcomes] == ["loaded"] * 3
    assert [o.rows_landed for o in report.outcomes] == [2, 2, 1]
    assert scans == []
    assert reconcile_orders(con).holds


def test_json_lines_report_non_text_values_and_extra_keys_as_the_scan_does(con, dirs, scans):
    (dirs[0] / "orders_j.jsonl").write_text(
        _record(order_id="O1", status=True) + "\n"
        + _record(order_id="O2", amount=3, note="n") + "\n"
        + _record(order_id="O3", amount=1.5e3, coupon="c") + "\n"
    )  # fmt: skip
    (outcome,) = ingest(con, dirs).outcomes
    assert outcome.status == "loaded" and scans == []
    assert outcome.non_text_columns == ("status: boolean", "amount: number")
    assert outcome.extra_columns == ("note", "coupon")
    amounts = con.execute("select amount from raw.orders order by order_id").fetchall()
    assert amounts == [("x",), ("3",), ("1500.0",)]


def test_json_values_are_typed_whatever_the_spacing_and_escapes_around_them(con, dirs, scans):
    # The screen tells a string by its first byte as DuckDB re-serializes the value.
    lines = [
        '{"order_id": "O1", "customer_id":\t "\\"C1", "ordered_at" :"x", "amount":  -1e2, '
        '"status":   false }',
        '{"order_id":"O2","customer_id":"\\u0043","ordered_at":"x","amount":"3","status":"true"}',
    ]
    (dirs[0] / "orders_s.jsonl").write_text("\n".join(lines) + "\n")
    (outcome,) = ingest(con, dirs).outcomes
    assert outcome.status == "loaded" and scans == []
    assert outcome.non_text_columns == ("amount: number", "status: boolean")
    loaded = con.execute("select customer_id, amount, status from raw.orders order by 1")
    assert loaded.fetchall() == [('"C1', "-100.0", "false"), ("C", "3", "true")]


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_a_csv_row_ending_in_a_delimiter_is_quarantined_by_the_scan(con, dirs, scans, newline):
    # Regression: DuckDB drops a trailing empty field, so "O2,C1,x,1,new," (six fields
    # under a five-column header) would load as five.
    text = HEADER + "O1,C1,x,1,new\nO2,C1,x,1,new,\n"
    (dirs[0] / "orders_t.csv").write_text(text.replace("\n", newline), newline="")
    assert_quarantined_beside_the_good_file(
        con, dirs, "orders_t.csv", "the row ending at line 3 has 6 fields where the header has 5"
    )
    assert scans == ["orders_t.csv"]


def test_a_csv_whose_header_ends_in_a_delimiter_loads_once_the_scan_agrees(con, dirs, scans):
    (dirs[0] / "orders_h.csv").write_text(HEADER.strip() + ",\nO1,C1,x,1,new,\n")
    (outcome,) = ingest(con, dirs).outcomes
    assert (outcome.status, outcome.rows_loaded, outcome.extra_columns) == ("loaded", 1, ("",))
    assert scans == ["orders_h.csv"]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("null", "line 2: not a JSON object (found NoneType)"),
        (_record(order_id="O2", amount=float("nan")), "line 2: not valid JSON (NaN is not"),
        (_record(order_id="O2", note=float("inf")), "line 2: not valid JSON (Infinity is not"),
        (_record(order_id="O2", amount={"usd": 1}), "line 2: column 'amount' holds a nested"),
    ],
    ids=["null", "nan", "infinity-in-an-extra-key", "nested"],
)
def test_what_duckdb_accepts_in_json_lines_but_the_rules_refuse_is_quarantined_by_the_scan(
    con, dirs, scans, line, problem
):
    (dirs[0] / "orders_n.jsonl").write_text(_record(order_id="O1") + "\n" + line + "\n")
    reason = assert_quarantined_beside_the_good_file(con, dirs, "orders_n.jsonl", problem)
    assert reason["rows_landed"] == 2
    assert scans == ["orders_n.jsonl"]


def test_a_nested_value_in_an_extra_key_is_judged_by_the_scan_and_loads(con, dirs, scans):
    (dirs[0] / "orders_x.jsonl").write_text(_record(order_id="O1", meta={"a": [1]}) + "\n")
    (outcome,) = ingest(con, dirs).outcomes
    assert (outcome.status, outcome.extra_columns) == ("loaded", ("meta",))
    assert scans == ["orders_x.jsonl"]


def test_a_file_duckdb_refuses_is_explained_by_the_scan_naming_the_line(con, dirs, scans):
    (dirs[0] / "orders_d.jsonl").write_text(
        _record(order_id="O1") + "\n" + '{"order_id": "O2", "order_id": "O3"}\n'
    )
    assert_quarantined_beside_the_good_file(
        con, dirs, "orders_d.jsonl", "line 2: the keys ['order_id'] appear more than once"
    )
    assert scans == ["orders_d.jsonl"]
