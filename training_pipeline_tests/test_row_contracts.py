"""Row contracts: declared as data, judged by one set-based engine with staging's own
parsers, for order files, CRM rows and ticket pages alike."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx
import pyarrow as pa
import pytest
import sqlalchemy as sa
from churn_demo import messy
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples
from order_file_helpers import ORDERS
from test_crm_database import CRM, add_records, customers_table

from training_pipeline.ingestion import warehouse as wh
from training_pipeline.ingestion.dbt_grammar import UnknownParser, parse_sql
from training_pipeline.ingestion.http_api import ingest_http
from training_pipeline.ingestion.rejected_rows import Provenance, apply_contract
from training_pipeline.ingestion.rejection_summary import Verdict
from training_pipeline.ingestion.row_contract import RowContract, ValueRange
from training_pipeline.ingestion.sql_table import extract_table
from training_pipeline.settings import DuckDBLimits, RowContractLimits, SettingsError
from training_pipeline_tests.http_source_helpers import ensure_raw_layer, tickets_client

AT = datetime(2026, 3, 1, 12, 0, 0)
ORDERS_CONTRACT = ORDERS.contract.row_contract(ORDERS.name)  # the churn shop's declaration
LIMITS = RowContractLimits()


@pytest.fixture
def con(tmp_path: Path):
    with wh.connect(tmp_path / "warehouse.duckdb", limits=DuckDBLimits()) as connection:
        ensure_raw_layer(connection)
        wh.ensure_raw_table(connection, ORDERS.name, ORDERS.contract.names)
        yield connection


def rejected(con) -> list[tuple]:
    return con.execute(
        "select source, source_ref, record_number, column_name, value, rule "
        "from raw.rejected_rows order by batch_id, source_ref, record_number"
    ).fetchall()


def test_every_timestamp_format_the_demo_delivers_passes_the_contract(con):
    rnd = random.Random(7)
    start = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    values = [messy.render_ordered_at(rnd, start + i * 3607) for i in range(400)]
    values += [messy.render_ticket_created_at(rnd, start + i * 3607) for i in range(400)]
    rows = pa.table(
        {
            "_record": list(range(1, len(values) + 1)),
            **{c: [f"O{i}" for i in range(len(values))] for c in ("order_id", "customer_id")},
            "ordered_at": values,
            "amount": ["$1,234.50"] * len(values),
            "status": ["done"] * len(values),
        }
    )
    con.register("incoming", rows)
    split = apply_contract(
        con, ORDERS_CONTRACT, "incoming", Provenance("t", "ref", "b1", AT), LIMITS
    )
    assert (split.rows_loaded, split.rows_rejected) == (len(values), 0)


def test_the_contract_judges_with_the_staging_macro_file_itself(tmp_path, monkeypatch):
    # One grammar: widening the macro's years (as a dbt change would) widens the contract.
    from training_pipeline.ingestion import dbt_grammar

    macro = (dbt_grammar.MACRO_DIR / "parse_timestamp_utc.sql").read_text()
    (tmp_path / "parse_timestamp_utc.sql").write_text(macro.replace("(?:19|20)", "(?:19|20|21)"))
    with duckdb.connect() as memory:

        def parsed(value: str):
            sql = parse_sql("parse_timestamp_utc", "v")
            return memory.execute(f"select {sql} from (select ? as v)", [value]).fetchone()[0]

        assert parsed("2150-01-01T00:00:00Z") is None
        monkeypatch.setattr(dbt_grammar, "MACRO_DIR", tmp_path)
        dbt_grammar._macro.cache_clear()
        try:
            assert parsed("2150-01-01T00:00:00Z") == datetime(2150, 1, 1)
        finally:
            dbt_grammar._macro.cache_clear()
    with pytest.raises(UnknownParser, match="no staging parser 'parse_nothing'"):
        parse_sql("parse_nothing", "x")


@given(st.text(max_size=40))
@settings(max_examples=examples(150), deadline=None)
def test_a_value_staging_cannot_read_is_never_out_of_range(text):
    # Only a value staging parses can be outside the bounds: the rest is staging's to null.
    with duckdb.connect() as memory:
        parsed = memory.execute(
            f"select {parse_sql('parse_timestamp_utc', 'v')} from (select ? as v)", [text]
        ).fetchone()[0]
        memory.execute(
            "create table incoming as select 1::bigint as _record, 'K' as order_id, "
            "null as customer_id, ?::varchar as ordered_at, null as amount, null as status",
            [text],
        )
        wh.ensure_raw_layer(memory)
        wh.ensure_raw_table(memory, ORDERS.name, ORDERS.contract.names)
        split = apply_contract(
            memory, ORDERS_CONTRACT, "incoming", Provenance("t", "r", "b", AT), LIMITS
        )
    in_bounds = parsed is None or datetime(1900, 1, 1) <= parsed <= AT + timedelta(hours=24)
    assert split.rows_rejected == (0 if in_bounds else 1)


def test_a_declared_value_range_rejects_a_parsed_value_outside_it(con):
    contract = RowContract(
        table="orders",
        columns=ORDERS_CONTRACT.columns,
        keys=("order_id",),
        parsers=(("amount", "parse_money"),),
        ranges=(ValueRange("amount", low=0, high=10_000),),
    )
    con.register(
        "incoming",
        pa.table(
            {
                "_record": [1, 2, 3, 4],
                "order_id": ["A", "B", "C", "D"],
                "customer_id": ["C1"] * 4,
                "ordered_at": ["x"] * 4,
                "amount": ["$1,234.50", "-3.00", "$10,000.01", "twelve"],
                "status": ["new"] * 4,
            }
        ),
    )
    split = apply_contract(con, contract, "incoming", Provenance("t", "f", "b1", AT), LIMITS)
    assert (split.rows_loaded, split.rows_rejected) == (2, 2)
    assert [(r[2], r[4], r[5]) for r in rejected(con)] == [
        (2, "-3.00", "value_out_of_range"),
        (3, "$10,000.01", "value_out_of_range"),
    ]


def test_a_contract_without_rules_loads_every_row(con):
    contract = RowContract(table="orders", columns=ORDERS_CONTRACT.columns, keys=())
    con.register(
        "incoming",
        pa.table({"_record": [1], **{c: [None] for c in ORDERS_CONTRACT.columns}}),
    )
    split = apply_contract(con, contract, "incoming", Provenance("t", "f", "b1", AT), LIMITS)
    assert (split.rows_loaded, split.rows_rejected) == (1, 0)


def test_a_contract_naming_an_unknown_column_or_an_unparsed_bound_fails_at_declaration():
    with pytest.raises(ValueError, match=r"unknown columns \['nope'\]"):
        RowContract(table="t", columns=("a",), keys=("nope",))
    with pytest.raises(ValueError, match=r"\['a'\] are bounded but have no parser"):
        RowContract(table="t", columns=("a",), keys=("a",), timestamps=("a",))


def test_the_verdict_warns_on_any_rejection_and_blocks_above_the_share():
    assert Verdict(100, 0, 0.05).passed
    warn = Verdict(100, 5, 0.05)
    assert not warn.passed and not warn.blocks
    assert Verdict(100, 6, 0.05).blocks
    assert "6 of 100 rows rejected (6.0%)" in Verdict(100, 6, 0.05).summary()


def test_limits_come_from_the_environment_and_bad_ones_name_the_variable():
    limits = RowContractLimits.from_env(
        {
            "TRAINING_PIPELINE_FUTURE_TOLERANCE_HOURS": "2",
            "TRAINING_PIPELINE_MAX_REJECTED_SHARE": "0.5",
        }
    )
    assert (limits.future_tolerance_hours, limits.max_rejected_share) == (2.0, 0.5)
    with pytest.raises(SettingsError, match="TRAINING_PIPELINE_MAX_REJECTED_SHARE"):
        RowContractLimits.from_env({"TRAINING_PIPELINE_MAX_REJECTED_SHARE": "7"})


def test_record_numbers_follow_the_file_order_in_a_large_file(con, tmp_path):
    from order_file_helpers import HEADER

    from training_pipeline.ingestion.landing_ingest import ingest_landing_folder

    landing = tmp_path / "landing"
    landing.mkdir()
    lines = [f"O{i},C1,2026-01-01,1,new" for i in range(1, 60_001)]
    for blank in (7_777, 59_999):
        lines[blank - 1] = f" ,C1,2026-01-01,{blank},new"
    (landing / "orders_big.csv").write_text(HEADER + "\n".join(lines) + "\n")
    ingest_landing_folder(con, ORDERS, landing, tmp_path / "q", "b1", AT)
    assert [(r[2], json.loads(r[0])["amount"]) for r in _rows_json(con)] == [
        (7_777, "7777"),
        (59_999, "59999"),
    ]


def _rows_json(con) -> list[tuple]:
    return con.execute(
        "select row_json, source_ref, record_number from raw.rejected_rows order by 3"
    ).fetchall()


# CRM -----------------------------------------------------------------------------------


def test_crm_rows_breaking_the_contract_are_rejected_and_the_cursor_stops_before_them(
    con, tmp_path
):
    url = f"sqlite:///{tmp_path / 'crm.sqlite'}"
    engine = sa.create_engine(url)
    table = customers_table(sa.MetaData())
    table.metadata.create_all(engine)
    good, future = datetime(2026, 1, 2, 9, 30), datetime(2099, 12, 31, 10, 0)
    add_records(
        engine, table, [(1, "C1", "25", good), (2, " ", "30", good), (3, "C3", "1", future)]
    )

    def run(batch: str):
        with wh.transaction(con):
            return extract_table(con, CRM, url, batch_id=batch, ingested_at=AT, limits=LIMITS)

    first = run("b1")
    assert (first.rows_read, first.rows_loaded, first.rows_rejected) == (3, 1, 2)
    # A far-future updated_at must not carry the cursor past every change to come.
    assert first.cursor_after == "2026-01-02 09:30:00"
    assert [(r[2], r[3], r[5]) for r in rejected(con)] == [
        (2, "customer_id", "blank_required"),
        (3, "updated_at", "timestamp_out_of_range"),
    ]
    again = run("b2")  # the rejected rows come back from the cursor: not recorded twice
    assert (again.rows_loaded, again.rows_rejected) == (0, 0)
    assert len(rejected(con)) == 2
    engine.dispose()


# Tickets -------------------------------------------------------------------------------


def _ticket(ticket_id: str, updated_at: str) -> dict:
    return {
        "ticket_id": ticket_id,
        "customer_id": "C1",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": updated_at,
        "status": "open",
        "satisfaction": None,
        "channel": "email",
        "subject": "s",
    }


def test_ticket_rows_breaking_the_contract_are_rejected_naming_their_page(con):
    page = [
        _ticket("T1", "2026-02-01T00:00:00Z"),
        _ticket("", "2026-02-02T00:00:00Z"),
        _ticket("T3", "2099-12-31T10:00:00Z"),
    ]
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, json={"data": page, "next_cursor": None})
    )
    with tickets_client("http://tickets.test", transport=transport) as client:
        with wh.transaction(con):
            report = ingest_http(con, client, batch_id="b1", ingested_at=AT, limits=LIMITS)
        assert (report.rows_loaded, report.rows_rejected) == (1, 2)
        assert report.cursor_after == "2026-02-01T00:00:00Z"
        assert [(r[1].split(":")[0], r[2], r[3], r[5]) for r in rejected(con)] == [
            ("page 1", 2, "ticket_id", "blank_key"),
            ("page 1", 3, "updated_at", "timestamp_out_of_range"),
        ]
        with wh.transaction(con):
            again = ingest_http(con, client, batch_id="b2", ingested_at=AT, limits=LIMITS)
    assert (again.rows_loaded, again.rows_rejected) == (0, 0)
