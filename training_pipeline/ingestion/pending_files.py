"""Checked files whose rows wait to be committed together, with their manifest rows.

A file is read, screened and judged by its row contract in temporary tables; the file's
table is then kept as it is (renamed) with the positions its contract refused, and the
held files are committed with their refused rows and manifest rows in one transaction
and ONE insert into ``raw.<name>``, over all of them, on one thread.

Why not one transaction per file: DuckDB 1.5 writes a large insert straight to the
database file in whole row groups (122,880 rows), but a commit's last, partial row group
is merged with its neighbours at the next checkpoint, which rewrites them.  Thirty order
files of 167k rows each, committed one by one, cost 15.8 CPU s to store 5M rows; the same
rows in one insert cost 6.9 s (and half the file size).  Several inserts in one
transaction, or one insert over a union of tables run in parallel, are as costly as a
commit per file (``one_thread``).

Exactly-once holds as before: a file's rows, its refused rows and its manifest row
commit together or not at all (a crash loses only the work held, and the next run
takes those files again).  ``flush_rows`` bounds the memory held: the files held are
committed once they hold that many rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime

import duckdb

from training_pipeline.ingestion.manifest import FileOutcome, StatSignature, write_manifest
from training_pipeline.ingestion.rejected_rows import (
    VIOLATIONS,
    Provenance,
    judge_rows,
    record_violations,
)
from training_pipeline.ingestion.row_contract import RowContract
from training_pipeline.ingestion.warehouse import (
    RAW_SCHEMA,
    REJECTED_ROWS,
    quote_identifier,
    transaction,
)
from training_pipeline.settings import RowContractLimits

# Committed in parts of at least this many rows: large enough that DuckDB writes whole
# row groups (its bulk writer buffers five), small enough to hold in memory.
FLUSH_ROWS = 2_000_000
# ... or of this many files: each is one branch of the commit's insert.
MAX_HELD_FILES = 200


@dataclass(frozen=True)
class Held:
    rows_kept: int
    rows_rejected: int


@dataclass(frozen=True)
class _HeldFile:
    rows: str  # the file's rows as read (a renamed temporary table), with ``_record``
    refused: str  # the positions the row contract refused
    provenance: Provenance
    manifest: tuple[FileOutcome, StatSignature] | None


@dataclass
class PendingFiles:
    """The files of one source held for one commit; ``flush`` commits them."""

    con: duckdb.DuckDBPyConnection
    contract: RowContract
    ledger_source: str  # the source's ledger id (manifest ``source``)
    batch_id: str
    processed_at: datetime
    flush_rows: int = FLUSH_ROWS
    _held: list[_HeldFile] = field(default_factory=list)
    _open: bool = False  # whether this run's tables are ready

    @property
    def _prefix(self) -> str:
        return f"_held_{self.contract.table}__"

    @property
    def _refused_table(self) -> str:
        return quote_identifier(f"{self._prefix}refused")

    def _open_tables(self) -> None:
        # A run that failed on this connection left its held tables: never committed,
        # they are dropped here rather than picked up.
        # Only this source's: another's name may start like this one's.
        own = re.compile(re.escape(self._prefix) + r"(refused|\d+_rows|\d+_v)")
        for (name,) in self.con.execute(
            "select table_name from duckdb_tables() where temporary"
        ).fetchall():
            if own.fullmatch(name):
                self.con.execute(f"drop table {quote_identifier(name)}").fetchall()
        self.con.execute(
            f"create temp table {self._refused_table} as select * from {REJECTED_ROWS} limit 0"
        ).fetchall()
        self._open = True

    def hold_rows(
        self,
        incoming: str,
        rows_in: int,
        provenance: Provenance,
        limits: RowContractLimits,
    ) -> Held:
        """Judge the ``rows_in`` rows of ``incoming`` (contract columns as text and
        ``_record``; counted when they were read) and hold them: the table itself is kept
        (renamed), with the positions it refused."""
        if not self._open:
            self._open_tables()
        judge_rows(self.con, self.contract, incoming, provenance.ingested_at, limits)
        rejected = record_violations(self.con, self.contract, provenance, self._refused_table)
        number = len(self._held)
        rows, refused = (quote_identifier(f"{self._prefix}{number}_{k}") for k in ("rows", "v"))
        self.con.execute(f"alter table {incoming} rename to {rows}").fetchall()
        self.con.execute(
            f"create temp table {refused} as select _record from {VIOLATIONS}"
        ).fetchall()
        self.con.execute(f"drop table {VIOLATIONS}").fetchall()
        self._held.append(_HeldFile(rows, refused, provenance, None))
        return Held(rows_in - rejected, rejected)

    def enlist(self, outcome: FileOutcome, stat_key: StatSignature) -> None:
        """Add the manifest row of the file held last; commit everything held once it
        holds ``flush_rows`` rows or ``MAX_HELD_FILES`` files."""
        self._held[-1] = replace(self._held[-1], manifest=(outcome, stat_key))
        rows = sum(h.manifest[0].rows_loaded for h in self._held if h.manifest is not None)
        if rows >= self.flush_rows or len(self._held) >= MAX_HELD_FILES:
            self.flush()

    def _kept_rows_sql(self) -> tuple[str, list[object]]:
        cols = ", ".join(quote_identifier(c) for c in self.contract.columns)
        selects, parameters = [], []
        for held in self._held:
            selects.append(
                f"select {cols}, ?, ?, ?, ? from {held.rows} i where not exists "
                f"(select 1 from {held.refused} v where v._record = i._record)"
            )
            p = held.provenance
            parameters += [p.source, p.ref, p.batch_id, p.ingested_at]
        return " union all ".join(selects), parameters

    def flush(self) -> None:
        """Commit every held file: its kept rows, its refused rows, its manifest row."""
        if not self._held:
            return
        unlisted = [h.rows for h in self._held if h.manifest is None]
        if unlisted:
            raise RuntimeError(f"held files without a manifest row: {unlisted}")
        raw = f"{RAW_SCHEMA}.{quote_identifier(self.contract.table)}"
        cols = ", ".join(quote_identifier(c) for c in self.contract.columns)
        kept, parameters = self._kept_rows_sql()
        with transaction(self.con), one_thread(self.con):
            self.con.execute(
                f"insert into {raw} ({cols}, _source, _source_ref, _batch_id, _ingested_at) {kept}",
                parameters,
            ).fetchall()
            self.con.execute(
                f"insert into {REJECTED_ROWS} select * from {self._refused_table}"
            ).fetchall()
            for held in self._held:
                outcome, stat_key = held.manifest
                write_manifest(
                    self.con,
                    self.ledger_source,
                    outcome,
                    stat_key,
                    self.batch_id,
                    self.processed_at,
                )
        for held in self._held:
            self.con.execute(f"drop table {held.rows}").fetchall()
            self.con.execute(f"drop table {held.refused}").fetchall()
        self.con.execute(f"drop table {self._refused_table}").fetchall()
        self._held, self._open = [], False


@contextmanager
def one_thread(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Run the block's statements on one DuckDB thread.

    An insert over a union of tables runs one pipeline per table in parallel, each
    leaving a partial row group that the next checkpoint rewrites (30 files: 13 CPU s
    and a 16 s checkpoint); on one thread they append in turn, in whole row groups
    (6.9 CPU s, no checkpoint work), with no copy of the rows into one table first.
    """
    ((threads,),) = con.execute("select current_setting('threads')").fetchall()
    con.execute("set threads = 1").fetchall()
    try:
        yield
    finally:
        con.execute(f"set threads = {int(threads)}").fetchall()
