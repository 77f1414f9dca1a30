"""Properties of the order-file reader: valid files round-trip exactly as text (each row
loaded, or kept whole in raw.rejected_rows when it breaks the row contract), and no
bytes at all make ingestion raise, lose a file or break the ledger."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples
from order_file_helpers import ORDERS, reconcile_orders

from training_pipeline.ingestion import warehouse as wh
from training_pipeline.ingestion.file_formats import count_records
from training_pipeline.ingestion.landing_ingest import ingest_landing_folder
from training_pipeline.settings import DuckDBLimits, LandingLimits

COLUMNS = ("order_id", "customer_id", "ordered_at", "amount", "status")
AT = datetime(2026, 3, 1)
LIMITS = LandingLimits(settle_s=0)
PROPERTY = settings(
    max_examples=examples(50), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# Any text a person or a system might put in a field: every code point UTF-8 can carry
# except NUL (a text file with NUL bytes is refused as binary), plus the characters that
# break naive readers.
TRICKY = ['"', "'", ",", ";", "\n", "\r", "\r\n", " ", "\t", "\ufeff", "\u2028", "é", "💥"]
FIELD = st.lists(
    st.one_of(
        st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")),
        st.sampled_from(TRICKY),
    ),
    max_size=4,
).map("".join)
ROWS = st.lists(st.tuples(*[FIELD] * len(COLUMNS)), min_size=1, max_size=8)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """One warehouse for the module: opening one per example would cost most of the time."""
    root = tmp_path_factory.mktemp("data")
    with wh.connect(root / "warehouse.duckdb", limits=DuckDBLimits()) as con:
        wh.ensure_raw_layer(con)
        wh.ensure_raw_table(con, ORDERS.name, ORDERS.contract.names)
        yield con, root


@contextmanager
def empty_landing(warehouse: tuple) -> Iterator[tuple]:
    """Empty raw tables and a fresh landing folder beside the warehouse, per example."""
    con, root = warehouse
    for table in ("orders", "file_manifest", "rejected_rows"):
        con.execute(f"delete from raw.{table}").fetchall()
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        (Path(tmp) / "landing").mkdir()
        yield con, Path(tmp) / "landing", Path(tmp) / "quarantine"


def write_csv(path: Path, rows: list[tuple], quoting: str) -> None:
    """Python's csv writer, as a delivering system would use it.

    Minimal quoting with its default CRLF line end; quoting everything with LF (minimal
    quoting with LF would leave a lone CR unquoted, which no reader can tell from a line
    end).
    """
    buffer = io.StringIO(newline="")
    if quoting == "minimal":
        writer = csv.writer(buffer)
    else:
        writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode("utf-8"))


def loaded_rows(con) -> list[tuple]:
    """The rows in raw.orders and those the row contract refused (a blank key, a date
    out of range), as delivered: together, every row of the file once."""
    columns = ", ".join(COLUMNS)
    loaded = con.execute(f"select {columns} from raw.orders").fetchall()
    refused = con.execute("select row_json, rule from raw.rejected_rows").fetchall()
    assert {rule for _, rule in refused} <= {"blank_key", "timestamp_out_of_range"}
    rejected = [tuple(json.loads(row)[c] for c in COLUMNS) for row, _ in refused]
    for row in rejected:  # a row with a usable key is refused only for its date
        assert (row[0] or "").strip() == "" or row[2] is not None
    return sorted(loaded + rejected, key=repr)


@PROPERTY
@given(rows=ROWS, quoting=st.sampled_from(["minimal", "all"]))
def test_any_valid_csv_loads_exactly_its_rows_as_text(warehouse, rows, quoting):
    with empty_landing(warehouse) as (con, landing, quarantine_dir):
        path = landing / "orders.csv"
        write_csv(path, rows, quoting)
        assert count_records(path, "csv", LIMITS.max_line_bytes) == len(rows)
        (outcome,) = ingest_landing_folder(
            con, ORDERS, landing, quarantine_dir, "b", AT, LIMITS
        ).outcomes
        assert outcome.status == "loaded", outcome.reason
        # An empty CSV field is a missing value: it loads as NULL.
        expected = [tuple(v if v != "" else None for v in row) for row in rows]
        assert loaded_rows(con) == sorted(expected, key=repr)


@PROPERTY
@given(
    rows=st.lists(st.tuples(*[st.one_of(st.none(), FIELD)] * len(COLUMNS)), min_size=1, max_size=8),
    ascii_only=st.booleans(),
)
def test_any_valid_json_lines_file_loads_exactly_its_rows_as_text(warehouse, rows, ascii_only):
    with empty_landing(warehouse) as (con, landing, quarantine_dir):
        path = landing / "orders.jsonl"
        lines = [
            json.dumps(dict(zip(COLUMNS, row, strict=True)), ensure_ascii=ascii_only)
            for row in rows
        ]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        assert count_records(path, "jsonl", LIMITS.max_line_bytes) == len(rows)
        (outcome,) = ingest_landing_folder(
            con, ORDERS, landing, quarantine_dir, "b", AT, LIMITS
        ).outcomes
        assert outcome.status == "loaded", outcome.reason
        assert loaded_rows(con) == sorted(rows, key=repr)


@PROPERTY
@given(
    rows=st.lists(st.tuples(*[st.one_of(st.none(), FIELD)] * len(COLUMNS)), min_size=1, max_size=8)
)
def test_any_valid_parquet_file_loads_exactly_its_rows_as_text(warehouse, rows):
    with empty_landing(warehouse) as (con, landing, quarantine_dir):
        path = landing / "orders.parquet"
        table = {c: pa.array([row[i] for row in rows], pa.string()) for i, c in enumerate(COLUMNS)}
        pq.write_table(pa.table(table), path)
        assert count_records(path, "parquet", LIMITS.max_line_bytes) == len(rows)
        (outcome,) = ingest_landing_folder(
            con, ORDERS, landing, quarantine_dir, "b", AT, LIMITS
        ).outcomes
        assert outcome.status == "loaded", outcome.reason
        assert loaded_rows(con) == sorted(rows, key=repr)


def valid_bytes(fmt: str) -> bytes:
    rows = [(f"O{i}", "C1", "2026-01-01", "1.5", "new") for i in range(3)]
    if fmt == "csv":
        return ("\n".join(",".join(r) for r in [COLUMNS, *rows]) + "\n").encode()
    if fmt == "jsonl":
        return "".join(json.dumps(dict(zip(COLUMNS, r, strict=True))) + "\n" for r in rows).encode()
    sink = io.BytesIO()
    pq.write_table(pa.table({c: [r[i] for r in rows] for i, c in enumerate(COLUMNS)}), sink)
    return sink.getvalue()


@st.composite
def damaged(draw) -> tuple[str, bytes]:
    """Arbitrary bytes, or a valid file cut short or with some bytes overwritten."""
    fmt = draw(st.sampled_from(["csv", "jsonl", "parquet"]))
    kind = draw(st.sampled_from(["random", "truncated", "overwritten"]))
    if kind == "random":
        return fmt, draw(st.binary(max_size=2000))
    content = bytearray(valid_bytes(fmt))
    if kind == "truncated":
        return fmt, bytes(content[: draw(st.integers(0, len(content)))])
    for _ in range(draw(st.integers(1, 8))):
        content[draw(st.integers(0, len(content) - 1))] = draw(st.integers(0, 255))
    return fmt, bytes(content)


@PROPERTY
@given(bad=damaged())
def test_no_bytes_make_ingestion_raise_and_the_ledger_always_balances(warehouse, bad):
    fmt, content = bad
    with empty_landing(warehouse) as (con, landing, quarantine_dir):
        (landing / f"orders_a.{fmt}").write_bytes(content)
        (landing / "orders_b.csv").write_bytes(valid_bytes("csv"))
        report = ingest_landing_folder(con, ORDERS, landing, quarantine_dir, "b", AT, LIMITS)
        statuses = {o.path: o.status for o in report.outcomes}
        assert statuses["orders_b.csv"] == "loaded"
        assert statuses[f"orders_a.{fmt}"] in {"loaded", "quarantined"}
        # Loaded files stay where they landed; every other one was moved to quarantine.
        assert {p.name for p in landing.iterdir()} == {
            p for p, s in statuses.items() if s == "loaded"
        }
        ledger = reconcile_orders(con)
        assert ledger.holds, ledger
        assert ledger.files_loaded + ledger.files_quarantined == 2
        assert ledger.rows_loaded == sum(o.rows_loaded for o in report.outcomes)
