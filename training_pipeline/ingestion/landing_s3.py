"""Ingest a files source whose landing folder is an S3 prefix, with the local guarantees.

Each new, settled object is downloaded into a staging folder of its own batch in the
data directory (``<data>/s3-staging/<source>/<batch>/``) and handed to the local engine
(``landing_ingest.ingest_file``): the same checks, row contract, transaction and
manifest, so nothing of the validation is forked.  The manifest and the lineage name
the object's ``s3://`` URL, and keep the object's signature (``landing_s3_survey``), so an
object that was not re-uploaded is not downloaded again.

- Exactly once per content: the sha256 of the downloaded bytes.  The same content under
  a new key (a re-upload, a copy) is recorded as taken with 0 rows, its reason naming the
  delivery that loaded it, and never loaded twice.
- Quarantine stays local, in the source's quarantine folder in the data directory, like
  a local source's: the staged copy is moved there with its reason file
  (``quarantine.py``), the manifest row is written, and only then is the object deleted
  from the bucket.  That is a copy (the download) then a delete, and the bytes are in
  the data directory before the delete, so nothing is lost.  A crash between the two
  leaves the object in the bucket; the next run finds its signature (url, size,
  LastModified, ETag) quarantined in the manifest and finishes the delete instead of
  quarantining (or loading) it again.  An object over the size limit is downloaded
  into the quarantine folder too (never parsed): never lost costs its disk space.
  A crash before the manifest row is recovered from the reason file, as locally.
- Loaded objects are left where they are, as loaded files are left in a local folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from training_pipeline.ingestion.file_formats import format_name, sha256_of
from training_pipeline.ingestion.landing_folder import TAKE_AT_ONCE, Entry
from training_pipeline.ingestion.landing_ingest import (
    CHANGED_WHILE_READ,
    DEFAULT_CONTRACT_LIMITS,
    ingest_file,
    pending_files_of,
)
from training_pipeline.ingestion.landing_s3_survey import S3Object, survey_s3_landing
from training_pipeline.ingestion.manifest import (
    FileOutcome,
    LandingReport,
    loaded_path_of,
    loaded_signatures,
    quarantined_signatures,
    record_unrecorded_quarantine,
    write_manifest,
)
from training_pipeline.ingestion.pending_files import PendingFiles
from training_pipeline.ingestion.quarantine import NAME_MAX
from training_pipeline.ingestion.warehouse import ensure_raw_table
from training_pipeline.settings import LandingLimits, RowContractLimits
from training_pipeline.spec.sources import FilesSource

STAGING_TMP = ".{}.part"
FINISHED_DELETE = "quarantined before, by a run that stopped before deleting it from the bucket"


def staged_name(name: str) -> str:
    """The local name of a downloaded object: its own when a file system takes it (and
    its temporary name), else a hash of it with its extension kept (the format)."""
    if len(os.fsencode(STAGING_TMP.format(name))) <= NAME_MAX - 32:  # room for the reason file
        return name
    return hashlib.sha256(name.encode()).hexdigest()[:40] + Path(name).suffix[:16]


def download(fs: Any, obj: S3Object, folder: Path) -> Path | None:
    """The object's bytes in ``folder``, written under a temporary name then renamed; None
    when it left the bucket since it was listed (a concurrent quarantine)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / staged_name(obj.name)
    tmp = folder / STAGING_TMP.format(target.name)
    try:
        fs.get_file(obj.url, str(tmp))
    except FileNotFoundError:
        tmp.unlink(missing_ok=True)
        return None
    os.replace(tmp, target)
    return target


def _skipped(obj: S3Object, sha: str | None, reason: str | None = None) -> FileOutcome:
    return FileOutcome(obj.url, sha, format_name(Path(obj.name)), "skipped", None, 0, reason)


def _take(
    con: duckdb.DuckDBPyConnection,
    source: FilesSource,
    fs: Any,
    obj: S3Object,
    staged: Path,
    quarantine_dir: Path,
    batch_id: str,
    ingested_at: datetime,
    limits: LandingLimits,
    contract_limits: RowContractLimits,
    pending: PendingFiles,
) -> FileOutcome:
    """Load or quarantine one downloaded object; the manifest decides what was done."""
    sha = None if obj.size > limits.max_file_bytes else sha256_of(staged)
    first = None if sha is None else loaded_path_of(con, source.ledger, sha)
    if sha is not None and first is not None:
        reason = f"the same content as {first}, loaded before: not loaded again"
        fmt = format_name(Path(obj.name))
        taken = FileOutcome(obj.url, sha, fmt, "loaded", 0, 0, reason)
        write_manifest(con, source.ledger, taken, obj.signature, batch_id, ingested_at)
        return _skipped(obj, sha, reason)
    entry = Entry(staged, obj.url, os.lstat(staged))
    outcome = ingest_file(
        con,
        source,
        entry,
        quarantine_dir,
        batch_id,
        ingested_at,
        limits,
        None,
        contract_limits,
        stat_key=obj.signature,
        pending=pending,
    )
    if outcome.status == "quarantined":
        fs.rm_file(obj.url)  # its bytes and reason are in the quarantine folder, recorded
    return outcome


def ingest_s3_landing(
    con: duckdb.DuckDBPyConnection,
    source: FilesSource,
    fs: Any,
    landing_url: str,
    staging_dir: Path,
    quarantine_dir: Path,
    batch_id: str,
    ingested_at: datetime,
    limits: LandingLimits = TAKE_AT_ONCE,
    now: float | None = None,
    contract_limits: RowContractLimits = DEFAULT_CONTRACT_LIMITS,
) -> LandingReport:
    """Load every new, settled object under ``landing_url`` into ``raw.<name>``; one
    commit per object (the local folder commits its files together, ``pending_files.py``).

    ``fs`` is the ``s3fs`` filesystem of ``s3_filesystem.py``; ``now`` (epoch seconds)
    is the clock the settle time is measured against.
    """
    ensure_raw_table(con, source.name, source.contract.names)
    report = LandingReport(batch_id)
    report.recovered = record_unrecorded_quarantine(con, source.ledger, quarantine_dir, ingested_at)
    now = time.time() if now is None else now
    survey = survey_s3_landing(fs, landing_url, limits.settle_s, now, limits.origins.settle_s)
    report.ignored = survey.ignored
    signatures = loaded_signatures(con, source.ledger)
    quarantined = quarantined_signatures(con, source.ledger)
    for obj, why in survey.deferred:
        known_sha = signatures.get(obj.signature)
        if known_sha is not None:
            report.outcomes.append(_skipped(obj, known_sha))
        else:
            report.outcomes.append(
                FileOutcome(obj.url, None, format_name(Path(obj.name)), "deferred", None, 0, why)
            )
    batch_staging = staging_dir / batch_id
    # Committed object by object: an object is compared by content with what is already
    # committed (``loaded_path_of``), which must include the object just before it.
    pending = pending_files_of(con, source, batch_id, ingested_at, flush_rows=0)
    try:
        for obj in survey.ready:
            known_sha = signatures.get(obj.signature)
            if known_sha is not None:  # taken before and not re-uploaded: not downloaded
                report.outcomes.append(_skipped(obj, known_sha))
                continue
            if obj.signature in quarantined:  # by a run that stopped before the delete
                fs.rm_file(obj.url)
                report.outcomes.append(_skipped(obj, None, FINISHED_DELETE))
                continue
            staged = download(fs, obj, batch_staging)
            if staged is None:
                report.outcomes.append(
                    FileOutcome(
                        obj.url,
                        None,
                        format_name(Path(obj.name)),
                        "deferred",
                        None,
                        0,
                        CHANGED_WHILE_READ,
                    )
                )
                continue
            report.outcomes.append(
                _take(
                    con,
                    source,
                    fs,
                    obj,
                    staged,
                    quarantine_dir,
                    batch_id,
                    ingested_at,
                    limits,
                    contract_limits,
                    pending,
                )
            )
            staged.unlink(missing_ok=True)  # moved away when it was quarantined
    finally:
        shutil.rmtree(batch_staging, ignore_errors=True)
    report.outcomes.sort(key=lambda o: o.path)
    return report
