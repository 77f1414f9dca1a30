"""The ledger of delivered files, ``raw.file_manifest``: one row per file taken.

Every file a landing folder gave up has a row, loaded or quarantined, under its source's
ledger id (``source``), so each files source's ledger can be reconciled with its
``raw.<name>`` table and its quarantine folder at any time; two sources never see each
other's files, even when both receive a file of the same name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from training_pipeline.ingestion.landing_folder import printable_name
from training_pipeline.ingestion.quarantine import (
    QuarantineRecord,
    find_unrecorded,
    prune_empty_batch_folders,
)
from training_pipeline.ingestion.warehouse import RAW_SCHEMA


@dataclass(frozen=True)
class FileOutcome:
    path: str  # relative to the landing folder
    sha256: str | None  # None: deferred, never read
    format: str
    status: str  # loaded | quarantined | skipped | deferred
    rows_landed: int | None
    rows_loaded: int
    reason: str | None = None
    quarantine_path: str | None = None
    extra_columns: tuple[str, ...] = ()
    non_text_columns: tuple[str, ...] = ()  # "amount: double": kept as text, parsed in staging
    rows_rejected: int = 0  # rows that broke the row contract (raw.rejected_rows)


@dataclass
class LandingReport:
    batch_id: str
    outcomes: list[FileOutcome] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)  # subfolders, with why
    # Quarantined by an earlier run that stopped before writing the manifest row.
    recovered: list[FileOutcome] = field(default_factory=list)

    def with_status(self, status: str) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def rows_loaded(self) -> int:
        return sum(o.rows_loaded for o in self.outcomes)

    @property
    def rows_rejected(self) -> int:
        return sum(o.rows_rejected for o in self.outcomes)

    @property
    def rows_quarantined(self) -> int:
        return sum(o.rows_landed or 0 for o in self.with_status("quarantined"))

    @property
    def rows_landed(self) -> int:
        taken = self.with_status("loaded") + self.with_status("quarantined")
        return sum(o.rows_landed or 0 for o in taken)


StatSignature = tuple[str, int, int, int]  # path, size, mtime_ns, ctime_ns


def signature(rel: str, st: os.stat_result) -> StatSignature:
    return (rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def loaded_signatures(con: duckdb.DuckDBPyConnection, source: str) -> dict[StatSignature, str]:
    """Stat signatures of loaded files, so unchanged files are not hashed again.

    The kernel moves ``ctime`` on every write and no copy tool can set it back, so a
    file whose size, mtime and ctime all match was not rewritten since it was loaded;
    an mtime preserved by a copy alone never makes a changed file look old.
    """
    rows = con.execute(
        f"select path, size_bytes, mtime_ns, ctime_ns, sha256 from {RAW_SCHEMA}.file_manifest "
        "where status = 'loaded' and source = ?",
        [source],
    ).fetchall()
    return {(p, size, mtime, ctime): sha for p, size, mtime, ctime, sha in rows}


def already_loaded(con: duckdb.DuckDBPyConnection, source: str, rel: str, sha: str) -> bool:
    ((count,),) = con.execute(
        f"select count(*) from {RAW_SCHEMA}.file_manifest "
        "where source = ? and path = ? and sha256 = ? and status = 'loaded'",
        [source, rel, sha],
    ).fetchall()
    return count > 0


def write_manifest(
    con: duckdb.DuckDBPyConnection,
    source: str,
    outcome: FileOutcome,
    signature: StatSignature,
    batch_id: str,
    processed_at: datetime,
) -> None:
    _, size, mtime_ns, ctime_ns = signature
    con.execute(
        f"insert into {RAW_SCHEMA}.file_manifest (source, path, sha256, size_bytes, mtime_ns, "
        "ctime_ns, format, status, rows_landed, rows_loaded, batch_id, processed_at, reason, "
        "quarantine_path, rows_rejected) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            source,
            outcome.path,
            outcome.sha256,
            size,
            mtime_ns,
            ctime_ns,
            outcome.format,
            outcome.status,
            outcome.rows_landed,
            outcome.rows_loaded,
            batch_id,
            processed_at,
            outcome.reason,
            outcome.quarantine_path,
            outcome.rows_rejected,
        ],
    ).fetchall()


def record_quarantine(
    con: duckdb.DuckDBPyConnection,
    source: str,
    record: QuarantineRecord,
    target: Path,
    at: datetime,
) -> FileOutcome:
    outcome = FileOutcome(
        record.file,
        record.sha256,
        record.format,
        "quarantined",
        record.rows_landed,
        0,
        record.reason,
        printable_name(str(target)),
    )
    signature = (record.file, record.size_bytes, record.mtime_ns, record.ctime_ns)
    write_manifest(con, source, outcome, signature, record.batch_id, at)
    return outcome


def record_unrecorded_quarantine(
    con: duckdb.DuckDBPyConnection, source: str, quarantine_dir: Path, at: datetime
) -> list[FileOutcome]:
    """Write the manifest rows a crash left out (see ``quarantine.py``); the quarantine
    folder is the source's own, so what it holds is the source's."""
    rows = con.execute(
        f"select path, sha256, batch_id, quarantine_path from {RAW_SCHEMA}.file_manifest "
        "where status = 'quarantined' and source = ?",
        [source],
    ).fetchall()
    recorded = {(path, sha, batch) for path, sha, batch, _ in rows}
    unrecorded = find_unrecorded(quarantine_dir, recorded, {moved for *_, moved in rows})
    for orphan in unrecorded.orphans:
        orphan.unlink()
    prune_empty_batch_folders(quarantine_dir)
    return [record_quarantine(con, source, record, moved, at) for record, moved in unrecorded.moved]


def loaded_path_of(con: duckdb.DuckDBPyConnection, source: str, sha: str) -> str | None:
    """The first delivery of this source loaded with content ``sha``, or None."""
    rows = con.execute(
        f"select path from {RAW_SCHEMA}.file_manifest "
        "where source = ? and sha256 = ? and status = 'loaded' order by processed_at, path limit 1",
        [source, sha],
    ).fetchall()
    return rows[0][0] if rows else None


def quarantined_signatures(con: duckdb.DuckDBPyConnection, source: str) -> set[StatSignature]:
    """The signature of every delivery of this source that was quarantined."""
    rows = con.execute(
        f"select path, size_bytes, mtime_ns, ctime_ns from {RAW_SCHEMA}.file_manifest "
        "where source = ? and status = 'quarantined'",
        [source],
    ).fetchall()
    return {(path, size, mtime, ctime) for path, size, mtime, ctime in rows}
