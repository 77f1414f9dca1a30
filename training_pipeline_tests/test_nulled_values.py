"""Counting the delivered values that cleaning refused, per parsed column."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from training_pipeline.cleaning.nulled_values import (
    NulledCount,
    nulled_values,
    nulled_values_by_relation,
    nulled_values_since,
    parsed_columns,
)


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create schema staging").fetchall()
    con.execute(
        "create table raw_people as select * from (values "
        "('25', '2024-01-02', 'x'), ('twenty-five', 'not a date', 'y'), "
        "('999', '', 'z'), ('  ', null, 'w')) t(age, signup, name)"
    ).fetchall()
    # The staging convention (dbt macro refused_texts): parse in one projection, then
    # keep in _delivered only the non-blank texts that parsed to null.
    con.execute(
        """
        create view staging.people as
        with parsed as (
            select
                case when age = 'twenty-five' then 25
                     when try_cast(age as int) between 1 and 119 then try_cast(age as int)
                end as age,
                try_cast(signup as date) as signup_date,
                name,
                struct_pack(age := age, signup_date := signup) as _delivered
            from raw_people
        )
        select * replace (struct_pack(
            age := case when age is null and trim(_delivered.age) <> ''
                then _delivered.age end,
            signup_date := case when signup_date is null and trim(_delivered.signup_date) <> ''
                then _delivered.signup_date end
        ) as _delivered)
        from parsed
        """
    ).fetchall()
    return con


def test_a_refused_value_counts_as_nulled_and_a_blank_one_does_not(con):
    counts = nulled_values(con, "staging", "people")
    # '999' is refused; '  ' was blank when delivered, so it is not a refusal.
    assert counts["age"] == NulledCount(delivered=3, nulled=1)
    # 'not a date' is refused; '' and NULL were never delivered values.
    assert counts["signup_date"] == NulledCount(delivered=2, nulled=1)
    assert counts["signup_date"].share == pytest.approx(0.5)


def test_only_columns_with_a_delivered_field_are_counted(con):
    assert parsed_columns(con, "staging", "people") == ["age", "signup_date"]
    assert "name" not in nulled_values(con, "staging", "people")


def test_a_relation_without_delivered_texts_reports_nothing(con):
    con.execute("create table staging.plain as select 1 as x").fetchall()
    assert nulled_values(con, "staging", "plain") == {}
    assert nulled_values_by_relation(con, [("staging", "plain"), ("staging", "people")]).keys() == {
        ("staging", "people")
    }


def test_a_delivered_field_without_a_column_of_that_name_is_ignored(con):
    con.execute(
        "create view staging.renamed as select 1 as a, "
        "struct_pack(b := 'x', a := null::varchar) as _delivered"
    ).fetchall()
    assert list(nulled_values(con, "staging", "renamed")) == ["a"]


def test_odd_column_names_are_quoted_not_executed(con):
    con.execute(
        """create view staging.odd as select null::int as "a""; drop table raw_people; --",
        struct_pack("a""; drop table raw_people; --" := 'text') as _delivered"""
    ).fetchall()
    counts = nulled_values(con, "staging", "odd")
    assert counts == {'a"; drop table raw_people; --': NulledCount(delivered=1, nulled=1)}
    assert con.execute("select count(*) from raw_people").fetchall() == [(4,)]


def test_a_delivered_column_that_is_not_a_struct_is_an_error_naming_it(con):
    con.execute("create view staging.wrong as select 1 as a, 'x' as _delivered").fetchall()
    with pytest.raises(TypeError, match=r"staging\.wrong\._delivered must be a STRUCT"):
        nulled_values(con, "staging", "wrong")


def test_a_delivered_field_that_is_not_text_is_an_error_naming_the_struct(con):
    con.execute(
        "create view staging.typed as select null::int as a, struct_pack(a := 5) as _delivered"
    ).fetchall()
    with pytest.raises(TypeError, match=r"staging\.typed\._delivered must be a STRUCT of VARCHAR"):
        nulled_values(con, "staging", "typed")


def test_a_text_kept_beside_its_parsed_value_is_an_error_naming_the_column(con):
    # A struct of every delivered text, read as refused texts, would count every
    # delivered value as nulled.
    con.execute(
        "create view staging.every_text as select "
        "try_cast(age as int) as age, try_cast(signup as date) as signup_date, "
        "struct_pack(age := age, signup_date := null::varchar) as _delivered from raw_people"
    ).fetchall()
    with pytest.raises(
        ValueError, match=r"staging\.every_text\._delivered .* not refused for age:"
    ):
        nulled_values(con, "staging", "every_text")


def test_a_blank_text_kept_as_refused_is_an_error_naming_the_column(con):
    con.execute(
        "create view staging.blank as select null::int as a, struct_pack(a := '  ') as _delivered"
    ).fetchall()
    with pytest.raises(ValueError, match=r"not refused for a:"):
        nulled_values(con, "staging", "blank")


@pytest.fixture
def batches() -> duckdb.DuckDBPyConnection:
    """Two batches of delivered ages, each refusing one value."""
    con = duckdb.connect()
    con.execute("create schema staging").fetchall()
    con.execute(
        "create table raw_ages as select * from (values "
        "('25', timestamp '2026-01-01 01:00'), ('999', timestamp '2026-01-01 01:00'), "
        "('30', timestamp '2026-01-02 01:00'), ('abc', timestamp '2026-01-02 01:00'), "
        "('41', timestamp '2026-01-02 01:00')) t(age, _ingested_at)"
    ).fetchall()
    con.execute(
        "create view staging.ages as select age, "
        "struct_pack(age := case when age is null then text end) as _delivered, _ingested_at "
        "from (select case when try_cast(age as int) < 120 then try_cast(age as int) end "
        "as age, age as text, _ingested_at from raw_ages)"
    ).fetchall()
    return con


def test_a_count_after_a_batch_time_covers_only_the_later_batches(batches):
    first = nulled_values_since(batches, "staging", "ages", None)
    assert first.columns == {"age": NulledCount(delivered=5, nulled=2)}
    assert first.counted_through == datetime(2026, 1, 2, 1)
    since_first = nulled_values_since(batches, "staging", "ages", datetime(2026, 1, 1, 1))
    assert since_first.columns == {"age": NulledCount(delivered=3, nulled=1)}
    assert since_first.counted_through == datetime(2026, 1, 2, 1)


def test_a_count_with_no_new_rows_is_zero_and_keeps_the_previous_mark(batches):
    mark = datetime(2026, 1, 2, 1)
    later = nulled_values_since(batches, "staging", "ages", mark)
    assert later.columns == {"age": NulledCount(delivered=0, nulled=0)}
    assert later.counted_through == mark


def test_relations_are_counted_from_their_own_marks(batches):
    counts = nulled_values_by_relation(
        batches, [("staging", "ages")], {("staging", "ages"): datetime(2026, 1, 1, 1)}
    )
    assert counts[("staging", "ages")].columns["age"] == NulledCount(delivered=3, nulled=1)


def test_a_batch_count_of_a_relation_without_batch_times_is_an_error_naming_it(con):
    with pytest.raises(ValueError, match=r"staging\.people has no _ingested_at column"):
        nulled_values_since(con, "staging", "people", datetime(2026, 1, 1))
