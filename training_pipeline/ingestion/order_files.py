"""Ingest order files from the landing folder: once per content, verified, or quarantined.

A manifest (``raw.file_manifest``) keyed by path and content hash makes ingestion
exactly-once per content: an identical re-delivery is skipped, a corrected one (same
path, new bytes) is loaded as a new delivery and wins in staging.  A file that cannot be
loaded is moved to the quarantine folder with a reason file beside it and recorded in
the manifest, so it is never silently dropped and never blocks the good files.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from training_pipeline.ingestion.file_formats import (
    SUPPORTED_FORMATS,
    FileRejected,
    count_records,
    describe,
    file_format,
    select_as_text_sql,
    sha256_of,
    verify_schema,
)
from training_pipeline.ingestion.warehouse import RAW_COLUMNS, RAW_SCHEMA, transaction

SOURCE = "order_files"
REQUIRED_COLUMNS = RAW_COLUMNS["orders"]


@dataclass(frozen=True)
class FileOutcome:
    path: str  # relative to the landing folder
    sha256: str
    format: str
    status: str  # loaded | quarantined | skipped
    rows_landed: int | None
    rows_loaded: int
    reason: str | None = None
    quarantine_path: str | None = None
    extra_columns: tuple[str, ...] = ()


@dataclass
class LandingReport:
    batch_id: str
    outcomes: list[FileOutcome] = field(default_factory=list)

    def with_status(self, status: str) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def rows_loaded(self) -> int:
        return sum(o.rows_loaded for o in self.outcomes)

    @property
    def rows_quarantined(self) -> int:
        return sum(o.rows_landed or 0 for o in self.with_status("quarantined"))

    @property
    def rows_landed(self) -> int:
        return sum(o.rows_landed or 0 for o in self.outcomes if o.status != "skipped")


def discover_files(landing_dir: Path) -> list[Path]:
    """Delivered files in the landing folder, oldest name first.

    Dot-files are in-flight writes (writers land a temporary dot-name, then rename), so
    they are left alone until they are complete.
    """
    if not landing_dir.is_dir():
        return []
    return sorted(p for p in landing_dir.iterdir() if p.is_file() and not p.name.startswith("."))


def _already_loaded(con: duckdb.DuckDBPyConnection, rel: str, sha: str) -> bool:
    (row,) = con.execute(
        f"select count(*) from {RAW_SCHEMA}.file_manifest "
        "where path = ? and sha256 = ? and status = 'loaded'",
        [rel, sha],
    ).fetchall()
    return row[0] > 0


def _load(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    rel: str,
    fmt: str,
    rows_landed: int,
    batch_id: str,
    ingested_at: datetime,
) -> tuple[int, tuple[str, ...]]:
    """Insert the file's rows into raw.orders; the caller owns the transaction."""
    if rows_landed == 0:
        raise FileRejected("the file holds no data rows")
    extra = verify_schema(describe(con, path, fmt), REQUIRED_COLUMNS, fmt)
    columns = ", ".join(REQUIRED_COLUMNS)
    try:
        inserted = con.execute(
            f"insert into {RAW_SCHEMA}.orders ({columns}, _source, _source_ref, "
            f"_batch_id, _ingested_at) select *, ?, ?, ?, ? from "
            f"({select_as_text_sql(fmt, REQUIRED_COLUMNS)})",
            [SOURCE, rel, batch_id, ingested_at, str(path)],
        ).fetchall()[0][0]
    except duckdb.Error as error:
        first_line = str(error).strip().splitlines()[0]
        raise FileRejected(f"unreadable {fmt} file: {first_line}") from error
    if inserted != rows_landed:
        raise FileRejected(
            f"row count mismatch: the file holds {rows_landed} records but the reader "
            f"produced {inserted}"
        )
    return inserted, tuple(extra)


def _quarantine(path: Path, quarantine_dir: Path, batch_id: str, reason: dict) -> Path:
    target_dir = quarantine_dir / batch_id
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / path.name
    reason_file = target_dir / f"{path.name}.reason.json"
    tmp = target_dir / f".{path.name}.reason.json.tmp"
    tmp.write_text(json.dumps(reason, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, reason_file)
    os.replace(path, target)
    return target


StatSignature = tuple[str, int, int, int]  # path, size, mtime_ns, ctime_ns


def _signature(rel: str, stat: os.stat_result) -> StatSignature:
    return (rel, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def _loaded_signatures(con: duckdb.DuckDBPyConnection) -> dict[StatSignature, str]:
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


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    landing_dir: Path,
    quarantine_dir: Path,
    batch_id: str,
    ingested_at: datetime,
    loaded_signatures: dict[StatSignature, str] | None = None,
) -> FileOutcome:
    rel = path.relative_to(landing_dir).as_posix()
    stat = path.stat()
    signature = _signature(rel, stat)
    known_sha = (loaded_signatures or {}).get(signature)
    if known_sha is not None:
        return FileOutcome(rel, known_sha, path.suffix.lstrip("."), "skipped", None, 0)
    sha = sha256_of(path)
    if _already_loaded(con, rel, sha):
        return FileOutcome(rel, sha, path.suffix.lstrip("."), "skipped", None, 0)
    rows_landed: int | None = None
    try:
        fmt = file_format(path)
        rows_landed = count_records(path, fmt)
        with transaction(con):
            loaded, extra = _load(con, path, rel, fmt, rows_landed, batch_id, ingested_at)
            outcome = FileOutcome(rel, sha, fmt, "loaded", rows_landed, loaded, None, None, extra)
            _write_manifest(con, outcome, signature, batch_id, ingested_at)
        return outcome
    except FileRejected as rejected:
        fmt = SUPPORTED_FORMATS.get(path.suffix.lower(), path.suffix.lstrip(".") or "none")
        reason = {
            "file": rel,
            "sha256": sha,
            "reason": str(rejected),
            "batch_id": batch_id,
            "rows_landed": rows_landed,
            "quarantined_at": ingested_at.isoformat(),
        }
        target = _quarantine(path, quarantine_dir, batch_id, reason)
        outcome = FileOutcome(
            rel, sha, fmt, "quarantined", rows_landed, 0, str(rejected), str(target)
        )
        _write_manifest(con, outcome, signature, batch_id, ingested_at)
        return outcome


def _write_manifest(
    con: duckdb.DuckDBPyConnection,
    outcome: FileOutcome,
    signature: StatSignature,
    batch_id: str,
    processed_at: datetime,
) -> None:
    _, size, mtime_ns, ctime_ns = signature
    con.execute(
        f"insert into {RAW_SCHEMA}.file_manifest values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        ],
    ).fetchall()


def ingest_landing_folder(
    con: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    quarantine_dir: Path,
    batch_id: str,
    ingested_at: datetime,
) -> LandingReport:
    """Load every new delivery in the landing folder; one transaction per file."""
    report = LandingReport(batch_id)
    signatures = _loaded_signatures(con)
    for path in discover_files(landing_dir):
        report.outcomes.append(
            ingest_file(con, path, landing_dir, quarantine_dir, batch_id, ingested_at, signatures)
        )
    return report


def outcome_as_dict(outcome: FileOutcome) -> dict:
    return asdict(outcome)
