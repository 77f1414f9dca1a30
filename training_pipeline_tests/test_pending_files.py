"""Loaded files are committed together: all of a file with its manifest row, or none."""

from __future__ import annotations

from functools import partial
from unittest import mock

import pytest

from training_pipeline.ingestion import landing_ingest, pending_files
from training_pipeline_tests.order_file_helpers import HEADER, ingest, make_dirs, open_warehouse


class Killed(BaseException):
    """Like a kill: nothing in ingestion may catch it."""


def land_files(landing, count: int, rows: int) -> dict[str, list[str]]:
    ids = {}
    for number in range(count):
        name = f"orders_{number}.csv"
        ids[name] = [f"O{number}-{i}" for i in range(rows)]
        lines = "".join(f"{oid},C1,2026-01-05T13:45:00Z,1.00,new\n" for oid in ids[name])
        (landing / name).write_text(HEADER + lines, encoding="utf-8")
    # One row breaks the contract (a blank key): it must travel with its file.
    with (landing / "orders_0.csv").open("a", encoding="utf-8") as handle:
        handle.write(",C1,2026-01-05T13:45:00Z,1.00,new\n")
    return ids


def committed(con) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Rows in raw, rows in the ledger and manifest rows_loaded, per file."""
    raw = dict(con.execute("select _source_ref, count(*) from raw.orders group by 1").fetchall())
    ledger = dict(
        con.execute("select source_ref, count(*) from raw.rejected_rows group by 1").fetchall()
    )
    manifest = dict(con.execute("select path, rows_loaded from raw.file_manifest").fetchall())
    return raw, ledger, manifest


def flushing_every(rows: int):
    return mock.patch.object(
        landing_ingest,
        "pending_files_of",
        partial(landing_ingest.pending_files_of, flush_rows=rows),
    )


def crash_at_call(name: str, call: int):
    real, calls = getattr(pending_files, name), 0

    def maybe_crash(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == call:
            raise Killed(name)
        return real(*args, **kwargs)

    return mock.patch.object(pending_files, name, maybe_crash)


def test_a_run_commits_every_loaded_file_with_its_refused_rows_and_manifest_row(tmp_path):
    dirs = make_dirs(tmp_path)
    ids = land_files(dirs[0], count=3, rows=4)
    with open_warehouse(tmp_path) as con:
        report = ingest(con, dirs)
        raw, ledger, manifest = committed(con)
    assert raw == manifest == {name: 4 for name in ids}
    assert ledger == {"orders_0.csv": 1}
    assert report.rows_loaded == 12 and report.rows_rejected == 1


@pytest.mark.parametrize(
    ("dies_in", "call"),
    [
        ("write_manifest", 2),  # inside the commit of all three files
        ("judge_rows", 3),  # two files held when the third one's judging dies
    ],
)
def test_a_run_that_dies_commits_nothing_and_the_next_run_on_the_connection_loads_all_once(
    tmp_path, dies_in, call
):
    dirs = make_dirs(tmp_path)
    ids = land_files(dirs[0], count=3, rows=4)
    with open_warehouse(tmp_path) as con:
        with crash_at_call(dies_in, call), pytest.raises(Killed):
            ingest(con, dirs, "b1")
        assert committed(con) == ({}, {}, {})
        # The dead run's held tables are dropped, never committed by this run.
        ingest(con, dirs, "b2")
        raw, ledger, manifest = committed(con)
    assert raw == manifest == {name: 4 for name in ids}
    assert ledger == {"orders_0.csv": 1}


def test_a_flush_bound_commits_in_parts_so_a_crash_keeps_the_parts_before_it(tmp_path):
    dirs = make_dirs(tmp_path)
    ids = land_files(dirs[0], count=3, rows=4)
    with open_warehouse(tmp_path) as con:
        # A part is committed once it holds 8 rows: files 0 and 1, then file 2 alone.
        with flushing_every(8), crash_at_call("write_manifest", 3), pytest.raises(Killed):
            ingest(con, dirs, "b1")
        raw, _, manifest = committed(con)
        assert raw == manifest == {"orders_0.csv": 4, "orders_1.csv": 4}
        report = ingest(con, dirs, "b2")
        raw, ledger, manifest = committed(con)
    assert [o.path for o in report.with_status("loaded")] == ["orders_2.csv"]
    assert raw == manifest == {name: 4 for name in ids}
    assert ledger == {"orders_0.csv": 1}


def test_a_run_drops_only_its_own_sources_leftover_held_tables(tmp_path):
    dirs = make_dirs(tmp_path)
    land_files(dirs[0], count=1, rows=2)
    with open_warehouse(tmp_path) as con:
        for name in ("_held_orders__0_rows", "_held_orders_x__0_rows"):
            con.execute(f"create temp table {name} as select 1 as _record").fetchall()
        ingest(con, dirs)
        left = {n for (n,) in con.execute("select table_name from duckdb_tables()").fetchall()}
        raw, _, manifest = committed(con)
    assert "_held_orders_x__0_rows" in left and "_held_orders__0_rows" not in left
    assert raw == manifest == {"orders_0.csv": 2}
