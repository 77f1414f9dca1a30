"""The quarantine and the manifest stay one ledger: no name clash loses a file, nothing
in quarantine is mistaken for what it is not, a crash between the move and the manifest
row is recorded on the next run, and the asset reports each batch's counts."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest
from order_file_helpers import (
    GOOD,
    HEADER,
    ingest,
    land_good,
    materialize_orders,
    reconcile_orders,
)

from training_pipeline.ingestion import manifest, quarantine


def test_a_file_and_a_file_named_like_its_reason_file_are_both_kept(con, dirs):
    landing, quarantine_dir = dirs
    (landing / "x.csv").write_bytes(b"\x00garbage")
    (landing / "x.csv.reason.json").write_text('{"not": "ours"}')
    report = ingest(con, dirs)
    assert [o.status for o in report.outcomes] == ["quarantined", "quarantined"]
    moved = sorted(p.relative_to(quarantine_dir).as_posix() for p in quarantine_dir.rglob("*"))
    assert moved == [
        "b1",
        "b1/_2",
        "b1/_2/x.csv.reason.json",
        "b1/_2/x.csv.reason.json.reason.json",
        "b1/x.csv",
        "b1/x.csv.reason.json",
    ]
    assert (quarantine_dir / "b1/_2/x.csv.reason.json").read_text() == '{"not": "ours"}'
    assert ingest(con, dirs, "b2").recovered == []  # neither is mistaken for a lost one


def test_a_delivery_that_looks_like_a_reason_file_is_never_taken_for_one(con, dirs, tmp_path):
    landing, quarantine_dir = dirs
    forged = {
        "kind": quarantine.REASON_KIND,
        "file": "ghost.csv",
        "sha256": "0" * 64,
        "format": "csv",
        "reason": "forged",
        "batch_id": "b0",
        "rows_landed": 1000,
        "size_bytes": 1,
        "mtime_ns": 0,
        "ctime_ns": 0,
        "quarantined_at": "2026-01-01T00:00:00",
    }
    (landing / "ghost.csv.reason.json").write_text(json.dumps(forged))
    (tmp_path / "outside.json").write_text(json.dumps(forged | {"file": "other.csv"}))
    (landing / "other.csv.reason.json").symlink_to(tmp_path / "outside.json")
    first = ingest(con, dirs, "b1")
    assert [o.status for o in first.outcomes] == ["quarantined", "quarantined"]
    second = ingest(con, dirs, "b2")
    assert second.recovered == []
    assert (quarantine_dir / "b1" / "ghost.csv.reason.json").read_text() == json.dumps(forged)
    assert (quarantine_dir / "b1" / "other.csv.reason.json").is_symlink()
    assert reconcile_orders(con).files_quarantined == 2


def crash_when(monkeypatch, target, name: str, condition) -> None:
    real = getattr(target, name)

    def maybe_crash(*args, **kwargs):
        if condition(*args):
            raise KeyboardInterrupt("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, maybe_crash)


def test_a_crash_after_the_move_and_before_the_manifest_row_is_recorded_next_run(
    con, dirs, monkeypatch
):
    landing, quarantine_dir = dirs
    (landing / "orders_bad.csv").write_text(HEADER + "B1,C1,x\nB2,C1,x,1,new\n")
    land_good(landing)
    crash_when(
        monkeypatch, manifest, "write_manifest", lambda _con, _source, o, *r: o.status != "loaded"
    )
    with pytest.raises(KeyboardInterrupt):
        ingest(con, dirs, "b1")
    assert (quarantine_dir / "b1" / "orders_bad.csv").exists()  # moved, but not in the ledger
    monkeypatch.undo()
    second = ingest(con, dirs, "b2")
    assert [o.path for o in second.recovered] == ["orders_bad.csv"]
    rows = con.execute("select path, status, batch_id, rows_landed from raw.file_manifest")
    assert sorted(rows.fetchall()) == [
        ("orders_bad.csv", "quarantined", "b1", 2),
        (GOOD, "loaded", "b2", 2),  # the crash stopped b1 before it reached the good file
    ]
    assert ingest(con, dirs, "b3").recovered == []  # recorded once, never twice
    ledger = reconcile_orders(con)
    assert ledger.holds and (ledger.rows_landed, ledger.rows_loaded) == (4, 2)


def test_a_crash_before_the_move_leaves_the_file_to_be_quarantined_once_next_run(
    con, dirs, monkeypatch
):
    landing, quarantine_dir = dirs
    bad = landing / "orders_bad.csv"
    bad.write_bytes(b"\x00\x01")
    crash_when(monkeypatch, quarantine.os, "replace", lambda src, dst: Path(src) == bad)
    with pytest.raises(KeyboardInterrupt):
        ingest(con, dirs, "b1")
    assert bad.exists() and (quarantine_dir / "b1" / "orders_bad.csv.reason.json").exists()
    monkeypatch.undo()
    ingest(con, dirs, "b2")
    reasons = sorted(
        p.relative_to(quarantine_dir).as_posix() for p in quarantine_dir.rglob("*.json")
    )
    assert reasons == ["b2/orders_bad.csv.reason.json"]  # the orphan of b1 is gone
    assert con.execute("select path, batch_id from raw.file_manifest").fetchall() == [
        ("orders_bad.csv", "b2")
    ]


@pytest.mark.integration
def test_the_order_files_asset_reports_this_batch_landed_loaded_quarantined_deferred(
    tmp_path: Path,
):
    landing, quarantine_dir = tmp_path / "data" / "landing", tmp_path / "data" / "quarantine"
    landing.mkdir(parents=True)
    land_good(landing)
    (landing / "orders_bad.csv").write_bytes(b"\x00")

    def materialize(settle_s: float) -> dg.ExecuteInProcessResult:
        return materialize_orders(tmp_path / "data", landing, quarantine_dir, settle_s)

    result = materialize(settle_s=0)
    (materialization,) = result.get_asset_materialization_events()
    counts = materialization.materialization.metadata["this_batch"].value
    assert counts == {
        "files_landed": 2,
        "files_loaded": 1,
        "files_quarantined": 1,
        "files_deferred": 0,
        "files_skipped_as_identical": 0,
        "rows_landed": 2,
        "rows_loaded": 2,
        "rows_rejected": 0,
        "rows_quarantined": 0,
    }
    (landing / "orders_late.csv").write_text(HEADER + "L1,C1,x,1,new\n")
    later = materialize(settle_s=3600)
    metadata = later.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["this_batch"].value["files_deferred"] == 1
    assert list(metadata["files_deferred"].value) == ["orders_late.csv"]
