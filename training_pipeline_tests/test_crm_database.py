"""The churn CRM, declared in examples/defs/churn/crm as a ``sql_table`` source: copied
incrementally on updated_at, idempotent, on SQLite and on Postgres."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from training_pipeline.ingestion import warehouse as wh
from training_pipeline.ingestion.sql_table import SqlSourceError, extract_table
from training_pipeline.settings import DEFAULT_PROJECT_DIR, DuckDBLimits, RowContractLimits
from training_pipeline.spec.sources import SourceSystem, SqlTableSource

AT = datetime(2026, 3, 1, 12, 0, 0)
CONTRACT = RowContractLimits()
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CRM_DECLARATION = DEFAULT_PROJECT_DIR / "defs" / "churn" / "crm" / "defs.yaml"


def churn_crm() -> SqlTableSource:
    """The CRM source as the churn example declares it."""
    attributes = yaml.safe_load(CRM_DECLARATION.read_text())["attributes"]
    (source,) = SourceSystem.model_validate(attributes).sources
    assert isinstance(source, SqlTableSource)
    return source


CRM = churn_crm()


def customers_table(metadata: sa.MetaData, name: str = "customers") -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("record_id", sa.Integer, primary_key=True),
        *(
            sa.Column(c, sa.Text)
            for c in (
                "customer_id",
                "full_name",
                "email",
                "age",
                "country",
                "segment",
                "signup_date",
            )
        ),
        sa.Column("updated_at", sa.DateTime),
    )


def add_records(engine: sa.Engine, table: sa.Table, rows: list[tuple[int, str, str, datetime]]):
    with engine.begin() as conn:
        conn.execute(
            table.insert(),
            [
                {
                    "record_id": rid,
                    "customer_id": cid,
                    "full_name": "A",
                    "email": " A@X.com ",
                    "age": age,
                    "country": "usa",
                    "segment": "SMB",
                    "signup_date": "2025/01/02",
                    "updated_at": ts,
                }
                for rid, cid, age, ts in rows
            ],
        )


@pytest.fixture
def con(tmp_path: Path):
    with wh.connect(tmp_path / "warehouse.duckdb", limits=DuckDBLimits()) as connection:
        wh.ensure_raw_layer(connection)
        yield connection


def run(con, url: str, batch: str):
    with wh.transaction(con):
        return extract_table(con, CRM, url, batch_id=batch, ingested_at=AT, limits=CONTRACT)


def check_incremental_extraction(con, engine: sa.Engine, table: sa.Table, url: str) -> None:
    t1, t2, t3 = (datetime(2026, 1, d, 9, 30) for d in (1, 2, 3))
    add_records(engine, table, [(1, "C1", "twenty-five", t1), (2, "C2", "40", t2)])
    first = run(con, url, "b1")
    assert (first.rows_read, first.rows_loaded, first.cursor_after) == (2, 2, "2026-01-02 09:30:00")

    again = run(con, url, "b2")  # nothing new: the boundary row is read and dropped
    assert (again.rows_read, again.rows_loaded) == (1, 0)

    # A record sharing the cursor's timestamp that arrived late is still picked up.
    add_records(engine, table, [(3, "C3", "age: 30", t2), (4, "C1", "26", t3)])
    third = run(con, url, "b3")
    assert third.rows_loaded == 2
    rows = con.execute(
        "select record_id, customer_id, age, updated_at, _source, _batch_id "
        "from raw.crm_customers order by record_id::int"
    ).fetchall()
    assert rows == [
        ("1", "C1", "twenty-five", "2026-01-01 09:30:00", "crm", "b1"),
        ("2", "C2", "40", "2026-01-02 09:30:00", "crm", "b1"),
        ("3", "C3", "age: 30", "2026-01-02 09:30:00", "crm", "b3"),
        ("4", "C1", "26", "2026-01-03 09:30:00", "crm", "b3"),
    ]


def test_sqlite_customers_are_copied_incrementally_and_reruns_add_nothing(con, tmp_path):
    url = f"sqlite:///{tmp_path / 'crm.sqlite'}"
    engine = sa.create_engine(url)
    table = customers_table(sa.MetaData())
    table.metadata.create_all(engine)
    check_incremental_extraction(con, engine, table, url)


def postgres_engine() -> sa.Engine:
    engine = sa.create_engine(POSTGRES_URL)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as error:
        pytest.skip(f"no PostgreSQL reachable at 127.0.0.1:5432 ({error.orig})")
    return engine


def test_postgres_customers_are_copied_incrementally_and_reruns_add_nothing(con):
    engine = postgres_engine()
    schema = f"crm_test_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"create schema {schema}"))
    try:
        table = customers_table(sa.MetaData(schema=schema))
        table.metadata.create_all(engine)
        url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
        check_incremental_extraction(con, engine, table, url)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"drop schema {schema} cascade"))
        engine.dispose()


def test_a_missing_table_is_reported_by_name_without_the_password(con, tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    with pytest.raises(SqlSourceError, match="source 'crm_customers': table 'customers' not found"):
        run(con, url, "b1")


def test_a_renamed_column_is_reported_by_name(con, tmp_path):
    url = f"sqlite:///{tmp_path / 'crm.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "create table customers (record_id integer primary key, customer_id text, "
                "full_name text, email text, years text, country text, segment text, "
                "signup_date text, updated_at timestamp)"
            )
        )
    with pytest.raises(SqlSourceError, match=r"lacks columns \['age'\]"):
        run(con, url, "b1")
    assert not wh.table_row_count(con, wh.RAW_SCHEMA, "crm_customers")  # absent or empty


def test_an_unreachable_database_is_reported_with_the_password_masked(con):
    url = "postgresql+psycopg://crm:s3cret@127.0.0.1:1/crm"
    with pytest.raises(SqlSourceError) as raised:
        run(con, url, "b1")
    assert "source 'crm_customers': cannot reach the database" in str(raised.value)
    assert "s3cret" not in str(raised.value)
