"""The landing folder gives up only settled regular files: files still being written
wait, links and other non-files are quarantined unread and never followed, subfolders
are left alone, and names holding SQL or glob characters are only ever names."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from order_file_helpers import (
    COLUMNS,
    GOOD,
    HEADER,
    assert_quarantined_beside_the_good_file,
    ingest,
    land_good,
    order_ids,
    reason_file,
    reconcile_orders,
)

from training_pipeline.ingestion import landing_ingest
from training_pipeline.ingestion.landing_folder import seconds_until_settled
from training_pipeline.ingestion.landing_scan import scan_landing
from training_pipeline.settings import LandingLimits


def test_a_file_changed_within_the_settle_time_waits_and_is_taken_later(con, dirs):
    landing = dirs[0]
    fresh = landing / "orders_fresh.csv"
    fresh.write_text(HEADER + "F1,C1,x,1,new\n")
    stamped_old = landing / "orders_stamped_old.csv"
    stamped_old.write_text(HEADER + "S1,C1,x,1,new\n")
    os.utime(stamped_old, ns=(0, 0))  # mtime 1970, but ctime is now: still in flight
    limits = LandingLimits(settle_s=5)
    now = time.time()
    first = ingest(con, dirs, "b1", limits=limits, now=now)
    assert [(o.path, o.status) for o in first.outcomes] == [
        ("orders_fresh.csv", "deferred"),
        ("orders_stamped_old.csv", "deferred"),
    ]
    assert "less than the settle time of 5 s" in first.outcomes[0].reason
    assert fresh.exists() and stamped_old.exists() and not dirs[1].exists()
    assert con.execute("select count(*) from raw.file_manifest").fetchall() == [(0,)]
    assert scan_landing(landing, None, limits, now).new_content == ()
    later = ingest(con, dirs, "b2", limits=limits, now=now + 6)
    assert [o.status for o in later.outcomes] == ["loaded", "loaded"]
    assert order_ids(con) == ["F1", "S1"]
    assert len(scan_landing(landing, None, limits, now + 6).new_content) == 2


def test_a_file_that_changes_while_being_read_is_deferred_not_loaded(con, dirs, monkeypatch):
    path = dirs[0] / "orders_growing.csv"
    path.write_text(HEADER + "O1,C1,x,1,new\n")
    real_inspect = landing_ingest.inspect_file

    def inspect_then_append(*args):
        shape = real_inspect(*args)
        with path.open("a") as handle:  # the writer is still at it
            handle.write("O2,C1,x,1,new\n")
        return shape

    monkeypatch.setattr(landing_ingest, "inspect_file", inspect_then_append)
    (outcome,) = ingest(con, dirs).outcomes
    assert outcome.status == "deferred" and "changed or disappeared while it was" in outcome.reason
    assert order_ids(con) == [] and path.exists()
    monkeypatch.undo()
    assert [o.status for o in ingest(con, dirs, "b2").outcomes] == ["loaded"]
    assert order_ids(con) == ["O1", "O2"]


def test_links_are_quarantined_as_links_and_never_followed(con, dirs, tmp_path):
    landing, quarantine_dir = dirs
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.csv"
    secret.write_text(HEADER + "SECRET,C1,x,1,new\n")
    land_good(landing)
    (landing / "to_outside.csv").symlink_to(secret)
    (landing / "to_inside.csv").symlink_to(landing / GOOD)
    (landing / "escape").symlink_to(Path("..") / "outside")  # a folder link: ../outside
    (landing / "dangling.csv").symlink_to(tmp_path / "nothing-here")
    report = ingest(con, dirs)
    statuses = {o.path: o.status for o in report.outcomes}
    assert statuses == {
        GOOD: "loaded",
        "to_outside.csv": "quarantined",
        "to_inside.csv": "quarantined",
        "escape": "quarantined",
        "dangling.csv": "quarantined",
    }
    for name in ("to_outside.csv", "to_inside.csv", "escape", "dangling.csv"):
        assert (quarantine_dir / "b1" / name).is_symlink()  # the link moved, not its target
        assert "a symbolic link" in reason_file(quarantine_dir, name)["reason"]
    assert reason_file(quarantine_dir, "to_outside.csv")["reason"] == (
        f"a symbolic link (to {str(secret)!r}); links are never followed; "
        "only regular files are read"
    )
    assert secret.read_text() == HEADER + "SECRET,C1,x,1,new\n"
    assert order_ids(con) == ["G1", "G2"]
    assert reconcile_orders(con).holds


def test_a_subfolder_is_left_alone_and_reported(con, dirs):
    sub = dirs[0] / "2026-01"
    sub.mkdir()
    (sub / "orders_1.csv").write_text(HEADER + "O1,C1,x,1,new\n")
    report = ingest(con, dirs)
    assert report.outcomes == []
    assert report.ignored == [
        ("2026-01", "a subfolder: only files directly in the landing folder are read")
    ]
    assert (sub / "orders_1.csv").exists() and order_ids(con) == []


def test_a_named_pipe_is_quarantined_without_blocking_on_it(con, dirs):
    os.mkfifo(dirs[0] / "orders_pipe.csv")
    assert_quarantined_beside_the_good_file(
        con, dirs, "orders_pipe.csv", "a named pipe (FIFO), not a regular file"
    )


def test_the_sensor_scan_keys_a_link_for_quarantine_without_reading_it(dirs, tmp_path):
    target = tmp_path / "big_outside.csv"
    target.write_text(HEADER)
    (dirs[0] / "link.csv").symlink_to(target)
    scan = scan_landing(dirs[0], None)
    (key,) = scan.new_content
    assert key.startswith("link.csv@refused:")
    assert scan_landing(dirs[0], scan.cursor).new_content == ()


def test_names_holding_sql_or_glob_characters_load_as_plain_names(con, dirs):
    landing = dirs[0]
    sql_name = "x'; drop table raw.orders; --.csv"
    weird_column = '"""amount""; drop table x; --"'  # CSV-quoted: "amount"; drop table x; --
    (landing / sql_name).write_text(f"{HEADER.strip()},{weird_column}\nQ1,C1,x,1,new,boom\n")
    (landing / "orders[1].csv").write_text(HEADER + "B1,C1,x,1,new\n")
    (landing / "orders1.csv").write_text(HEADER + "P1,C1,x,1,new\nP2,C1,x,1,new\n")
    (landing / "orders*.csv").write_text(HEADER + "S1,C1,x,1,new\n")
    (landing / "a b;c.jsonl").write_text(json.dumps(dict.fromkeys(COLUMNS, "J1")) + "\n")
    report = ingest(con, dirs)
    assert {o.status for o in report.outcomes} == {"loaded"}
    outcome = next(o for o in report.outcomes if o.path == sql_name)
    assert outcome.extra_columns == ('"amount"; drop table x; --',)
    by_file = con.execute(
        "select _source_ref, list(order_id order by order_id) from raw.orders group by 1 order by 1"
    ).fetchall()
    assert by_file == [
        ("a b;c.jsonl", ["J1"]),
        ("orders*.csv", ["S1"]),
        ("orders1.csv", ["P1", "P2"]),
        ("orders[1].csv", ["B1"]),
        (sql_name, ["Q1"]),
    ]
    manifest = con.execute("select path, status from raw.file_manifest order by 1").fetchall()
    assert manifest == [(name, "loaded") for name, _ in by_file]


def test_a_file_name_that_is_not_utf8_is_quarantined(con, dirs):
    name = os.fsdecode(b"orders_\xff.csv")
    (dirs[0] / name).write_text(HEADER + "O1,C1,x,1,new\n")
    land_good(dirs[0])
    report = ingest(con, dirs)
    shown = "orders_\\xff.csv"
    assert {o.path: o.status for o in report.outcomes} == {GOOD: "loaded", shown: "quarantined"}
    assert (dirs[1] / "b1" / name).exists()
    assert "not valid UTF-8" in reason_file(dirs[1], name)["reason"]
    assert reconcile_orders(con).holds


def test_an_explicit_run_knows_how_long_to_wait_for_a_file_still_settling(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    fresh = landing / "orders_1.csv"
    fresh.write_text("order_id\n1\n")
    changed_at = fresh.stat().st_ctime_ns / 1e9
    assert seconds_until_settled(landing, 5.0, now=changed_at + 1) == pytest.approx(4.0)
    assert seconds_until_settled(landing, 5.0, now=changed_at + 6) == 0.0
    assert seconds_until_settled(landing, 0.0, now=changed_at) == 0.0
    assert seconds_until_settled(tmp_path / "missing", 5.0) == 0.0
