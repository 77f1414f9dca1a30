"""The ledger of delivered files, ``raw.file_manifest``: one row per file taken.

Every file the landing folder gave up has a row, loaded or quarantined, so the ledger
can be reconciled with ``raw.orders`` and the quarantine folder at any time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
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


StatSignature = tuple[str, int, int, int]  # path, size, mtime_ns, ctime_ns


def signature(rel: str, st: os.stat_result) -> StatSignature:
    return (rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def loaded_signatures(con: duckdb.DuckDBPyConnection) -> dict[StatSignature, str]:
    """Stat signatures of loaded files, so unchanged files are not hashed again.

    The kernel moves ``ctime`` on every write and no copy tool can set it back, so a
    file whose size, mtime and ctime all match was not rewritten since it was loaded;
    an mtime preserved by a copy alone never makes a changed file look old.
    """
    rows = con.execute(
        f"select path, size_bytes, mtime_ns, ctime_ns, sha256 from {RAW_SCHEMA}.file_manifest "
        "where status = 'loaded'"
    ).fetchall()
    return {(p, size, mtime, ctime): sha for p, size, mtime, ctime, sha in rows}


def already_loaded(con: duckdb.DuckDBPyConnection, rel: str, sha: str) -> bool:
    ((count,),) = con.execute(
        f"select count(*) from {RAW_SCHEMA}.file_manifest "
        "where path = ? and sha256 = ? and status = 'loaded'",
        [rel, sha],
    ).fetchall()
    return count > 0


def write_manifest(
    con: duckdb.DuckDBPyConnection,
    outcome: FileOutcome,
    signature: StatSignature,
    batch_id: str,
    processed_at: datetime,
) -> None:
    _, size, mtime_ns, ctime_ns = signature
    con.execute(
        f"insert into {RAW_SCHEMA}.file_manifest (path, sha256, size_bytes, mtime_ns, ctime_ns, "
        "format, status, rows_landed, rows_loaded, batch_id, processed_at, reason, "
        "quarantine_path, rows_rejected) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
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
    con: duckdb.DuckDBPyConnection, record: QuarantineRecord, target: Path, at: datetime
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
    write_manifest(con, outcome, signature, record.batch_id, at)
    return outcome


def record_unrecorded_quarantine(
    con: duckdb.DuckDBPyConnection, quarantine_dir: Path, at: datetime
) -> list[FileOutcome]:
    """Write the manifest rows a crash left out (see ``quarantine.py``)."""
    rows = con.execute(
        f"select path, sha256, batch_id, quarantine_path from {RAW_SCHEMA}.file_manifest "
        "where status = 'quarantined'"
    ).fetchall()
    recorded = {(path, sha, batch) for path, sha, batch, _ in rows}
    unrecorded = find_unrecorded(quarantine_dir, recorded, {moved for *_, moved in rows})
    for orphan in unrecorded.orphans:
        orphan.unlink()
    prune_empty_batch_folders(quarantine_dir)
    return [record_quarantine(con, record, moved, at) for record, moved in unrecorded.moved]
