"""Ingest a files source's landing folder: once per content, verified, or quarantined.

Every declared ``files`` source (``spec.sources.FilesSource``) is ingested here: its
contract names the columns (required ones must be in every file, optional ones load as
NULL when absent), its ``formats`` the readers it accepts, and its rows go to
``raw.<name>``.  A manifest (``raw.file_manifest``, per source) keyed by path and content
hash makes ingestion exactly-once per content: an identical re-delivery is skipped, a
corrected one (same path, new bytes) is loaded as a new delivery and wins in staging.  A
file that cannot be loaded is moved to the source's quarantine folder with a reason file
beside it and recorded in the manifest, so it is never silently dropped and never blocks
the good files.  A file that is still changing is deferred: not read, not moved, taken by
a later run.
"""

from __future__ import annotations

import errno
import os
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import duckdb

from training_pipeline.ingestion.file_formats import (
    FileRejected,
    clip,
    file_format,
    format_name,
    sha256_of,
)
from training_pipeline.ingestion.file_screen import inspect_file, read_checked
from training_pipeline.ingestion.landing_folder import (
    TAKE_AT_ONCE,
    Entry,
    stat_signature,
    survey_landing,
)
from training_pipeline.ingestion.manifest import (
    FileOutcome,
    LandingReport,
    StatSignature,
    already_loaded,
    loaded_signatures,
    record_quarantine,
    record_unrecorded_quarantine,
    signature,
)
from training_pipeline.ingestion.pending_files import FLUSH_ROWS, PendingFiles
from training_pipeline.ingestion.quarantine import QuarantineRecord, move_to_quarantine
from training_pipeline.ingestion.rejected_rows import Provenance
from training_pipeline.ingestion.warehouse import ensure_raw_table
from training_pipeline.settings import LandingLimits, RowContractLimits
from training_pipeline.spec.sources import FilesSource

INCOMING = "_incoming_file"
DEFAULT_CONTRACT_LIMITS = RowContractLimits()
NOT_HASHED = "not hashed"  # the manifest's sha256 of an entry that was never read
CHANGED_WHILE_READ = "changed or disappeared while it was being read; a later run takes it"


class _ChangedWhileReading(Exception):
    pass


# What an OSError says about the file rather than the machine reading it.
FILE_FAULTS = frozenset({errno.EACCES, errno.EPERM, errno.ELOOP, errno.EISDIR, errno.ENAMETOOLONG})


def _changed_since_listed(entry: Entry) -> bool:
    try:
        now = os.lstat(entry.path)
    except FileNotFoundError:
        return True
    return stat_signature(now) != stat_signature(entry.lstat)


def _load(
    con: duckdb.DuckDBPyConnection,
    source: FilesSource,
    entry: Entry,
    fmt: str,
    limits: LandingLimits,
    provenance: Provenance,
    contract_limits: RowContractLimits,
    pending: PendingFiles,
) -> FileOutcome:
    """Check the file and hold its rows (kept and refused) in ``pending``.  Holding is
    the last step that can fail: once rows are held, the file's outcome is enlisted."""
    look = inspect_file(
        entry.path,
        fmt,
        source.contract.names,
        limits.max_line_bytes,
        limits.origins.max_line_bytes,
    )
    shape, extra = read_checked(con, INCOMING, entry.path, fmt, look, source.contract, limits)
    if _changed_since_listed(entry):
        raise _ChangedWhileReading
    # read_checked made sure the table holds exactly the file's records.
    held = pending.hold_rows(INCOMING, shape.records, provenance, contract_limits)
    return FileOutcome(
        entry.rel,
        None,
        fmt,
        "loaded",
        shape.records,
        held.rows_kept,
        extra_columns=tuple(clip(c, 200) for c in extra),
        non_text_columns=tuple(f"{c}: {t}" for c, t in shape.non_text.items()),
        rows_rejected=held.rows_rejected,
    )


def _deferred(entry: Entry, reason: str) -> FileOutcome:
    return FileOutcome(entry.rel, None, format_name(entry.path), "deferred", None, 0, reason)


def _quarantine(
    con: duckdb.DuckDBPyConnection,
    source: FilesSource,
    entry: Entry,
    quarantine_dir: Path,
    sha: str,
    rejected: FileRejected,
    batch_id: str,
    ingested_at: datetime,
    stat_key: StatSignature,
) -> FileOutcome:
    _, size_bytes, mtime_ns, ctime_ns = stat_key
    record = QuarantineRecord(
        file=entry.rel,
        sha256=sha,
        format=format_name(entry.path),
        reason=clip(str(rejected)),
        batch_id=batch_id,
        rows_landed=rejected.rows,
        size_bytes=size_bytes,
        mtime_ns=mtime_ns,
        ctime_ns=ctime_ns,
        quarantined_at=ingested_at.isoformat(),
    )
    target = move_to_quarantine(entry.path, quarantine_dir, record)
    return record_quarantine(con, source.ledger, record, target, ingested_at)


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    source: FilesSource,
    entry: Entry,
    quarantine_dir: Path,
    batch_id: str,
    ingested_at: datetime,
    limits: LandingLimits = TAKE_AT_ONCE,
    known: dict[StatSignature, str] | None = None,
    contract_limits: RowContractLimits = DEFAULT_CONTRACT_LIMITS,
    stat_key: StatSignature | None = None,
    *,
    pending: PendingFiles,
) -> FileOutcome:
    """Load or quarantine one file; a loaded file's rows and manifest row are held in
    ``pending`` and committed when it flushes (``pending_files.py``).

    ``stat_key``: the signature the manifest keeps for the delivery; default the
    file's own (an S3 object staged locally passes the object's, ``landing_s3.py``)."""
    stat_key = signature(entry.rel, entry.lstat) if stat_key is None else stat_key
    known_sha = (known or {}).get(stat_key)
    fmt_name = entry.path.suffix.lstrip(".")
    if known_sha is not None:
        return FileOutcome(entry.rel, known_sha, fmt_name, "skipped", None, 0)
    sha = NOT_HASHED
    try:
        if entry.lstat.st_size > limits.max_file_bytes:
            raise FileRejected(
                f"the file is {entry.lstat.st_size} bytes, over the limit of "
                f"{limits.max_file_bytes} bytes ({limits.origins.max_file_bytes}); it was not read"
            )
        sha = sha256_of(entry.path)
        if already_loaded(con, source.ledger, entry.rel, sha):
            return FileOutcome(entry.rel, sha, fmt_name, "skipped", None, 0)
        fmt = file_format(entry.path, source.formats)
        provenance = Provenance(source.ledger, entry.rel, batch_id, ingested_at)
        try:
            outcome = _load(con, source, entry, fmt, limits, provenance, contract_limits, pending)
        finally:
            con.execute(f"drop table if exists {INCOMING}").fetchall()
    except _ChangedWhileReading:
        return _deferred(entry, CHANGED_WHILE_READ)
    except (FileRejected, OSError) as error:
        if _changed_since_listed(entry):
            # A partial file must not be quarantined for being partial.
            return _deferred(entry, CHANGED_WHILE_READ)
        if isinstance(error, FileRejected):
            rejected = error
        elif error.errno in FILE_FAULTS:
            # The file itself cannot be read: contained to it, and the next file proceeds.
            rejected = FileRejected(f"the file cannot be read: {error.strerror or error}")
        else:
            # A fault of the machine (too many open files, an I/O error, a stale mount)
            # says nothing about the file: quarantining it would lose a good delivery.
            raise
        return _quarantine(
            con, source, entry, quarantine_dir, sha, rejected, batch_id, ingested_at, stat_key
        )
    outcome = replace(outcome, sha256=sha)
    pending.enlist(outcome, stat_key)
    return outcome


def pending_files_of(
    con: duckdb.DuckDBPyConnection,
    source: FilesSource,
    batch_id: str,
    ingested_at: datetime,
    flush_rows: int = FLUSH_ROWS,
) -> PendingFiles:
    """Where a run holds the source's loaded files until they are committed."""
    contract = source.contract.row_contract(source.name)
    return PendingFiles(con, contract, source.ledger, batch_id, ingested_at, flush_rows)


def ingest_landing_folder(
    con: duckdb.DuckDBPyConnection,
    source: FilesSource,
    landing_dir: Path,
    quarantine_dir: Path,
    batch_id: str,
    ingested_at: datetime,
    limits: LandingLimits = TAKE_AT_ONCE,
    now: float | None = None,
    contract_limits: RowContractLimits = DEFAULT_CONTRACT_LIMITS,
) -> LandingReport:
    """Load every new, settled delivery in the source's landing folder into
    ``raw.<name>`` (created when absent); loaded files are committed together
    (``pending_files.py``), quarantined ones at once.

    ``now`` (epoch seconds) is the clock the settle time is measured against.
    """
    ensure_raw_table(con, source.name, source.contract.names)
    report = LandingReport(batch_id)
    report.recovered = record_unrecorded_quarantine(con, source.ledger, quarantine_dir, ingested_at)
    now = time.time() if now is None else now
    survey = survey_landing(landing_dir, limits.settle_s, now, limits.origins.settle_s)
    report.ignored = survey.ignored
    signatures = loaded_signatures(con, source.ledger)
    pending = pending_files_of(con, source, batch_id, ingested_at)
    for entry, why in survey.refused:
        rejected = FileRejected(f"{why}; only regular files are read")
        report.outcomes.append(
            _quarantine(
                con,
                source,
                entry,
                quarantine_dir,
                NOT_HASHED,
                rejected,
                batch_id,
                ingested_at,
                signature(entry.rel, entry.lstat),
            )
        )
    for entry, why in survey.deferred:
        known_sha = signatures.get(signature(entry.rel, entry.lstat))
        if known_sha is not None:  # loaded moments ago and not touched since
            report.outcomes.append(
                FileOutcome(entry.rel, known_sha, entry.path.suffix.lstrip("."), "skipped", None, 0)
            )
        else:
            report.outcomes.append(_deferred(entry, why))
    for entry in survey.ready:
        report.outcomes.append(
            ingest_file(
                con,
                source,
                entry,
                quarantine_dir,
                batch_id,
                ingested_at,
                limits,
                signatures,
                contract_limits,
                pending=pending,
            )
        )
    pending.flush()
    report.outcomes.sort(key=lambda o: o.path)
    return report
