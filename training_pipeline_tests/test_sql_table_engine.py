"""The sql_table engine on cases the churn CRM never shows: a numeric cursor, an optional
column the table lacks, a query that fails, a full-refresh source turned incremental."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from training_pipeline.ingestion import warehouse as wh
from training_pipeline.ingestion.sql_table import SqlReport, SqlSourceError, extract_table
from training_pipeline.settings import DuckDBLimits, RowContractLimits
from training_pipeline.spec.sources import SqlTableSource

AT = datetime(2026, 3, 1, 12, 0, 0)


def declared(**fields: Any) -> SqlTableSource:
    return SqlTableSource.model_validate(
        {"name": "events", "kind": "sql_table", "url_env": "EVENTS_DB_URL", **fields}
    )


@pytest.fixture
def con(tmp_path: Path):
    with wh.connect(tmp_path / "warehouse.duckdb", limits=DuckDBLimits()) as connection:
        wh.ensure_raw_layer(connection)
        yield connection


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'events.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("create table events (id text primary key, version integer)"))
    engine.dispose()
    return url


def add(url: str, *rows: tuple[str, int]) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("insert into events values (:id, :version)"),
            [{"id": i, "version": v} for i, v in rows],
        )
    engine.dispose()


def run(con, source: SqlTableSource, url: str, batch: str) -> SqlReport:
    with wh.transaction(con):
        return extract_table(
            con, source, url, batch_id=batch, ingested_at=AT, limits=RowContractLimits()
        )


def test_a_numeric_cursor_is_compared_as_a_number_past_a_change_of_digit_count(con, url):
    source = declared(
        table="events",
        incremental={"cursor": "version"},
        contract={"primary_key": ["id"], "columns": ["id", "version"]},
    )
    add(url, ("a", 9))
    assert run(con, source, url, "b1").cursor_after == "9"
    add(url, ("b", 10), ("c", 9))  # c arrived late with the cursor's own value
    second = run(con, source, url, "b2")
    assert (second.rows_read, second.rows_loaded, second.cursor_after) == (3, 2, "10")
    third = run(con, source, url, "b3")
    assert (third.rows_read, third.rows_loaded) == (1, 0)
    assert con.execute("select id, version from raw.events order by id").fetchall() == [
        ("a", "9"),
        ("b", "10"),
        ("c", "9"),
    ]


def test_an_optional_column_the_table_lacks_loads_as_null(con, url):
    source = declared(
        table="events",
        contract={"columns": {"id": {}, "version": {}, "note": {"optional": True}}},
    )
    add(url, ("a", 1))
    assert run(con, source, url, "b1").rows_loaded == 1
    assert con.execute("select id, version, note from raw.events").fetchall() == [("a", "1", None)]


def test_a_failing_query_is_reported_naming_the_source(con, url):
    source = declared(query="select id, version from nowhere", contract={"columns": ["id"]})
    with pytest.raises(SqlSourceError, match="source 'events': the declared query fails on"):
        run(con, source, url, "b1")


def test_a_full_refresh_source_made_incremental_loads_no_row_twice(con, url):
    contract = {"primary_key": ["id"], "columns": ["id", "version"]}
    add(url, ("a", 1), ("b", 2))
    full = run(con, declared(table="events", contract=contract), url, "b1")
    assert (full.rows_loaded, full.cursor_after[:7]) == (2, "sha256:")
    incremental = declared(table="events", contract=contract, incremental={"cursor": "version"})
    first = run(con, incremental, url, "b2")  # a fingerprint is no cursor: read everything
    assert (first.rows_read, first.rows_loaded, first.cursor_after) == (2, 0, "2")
