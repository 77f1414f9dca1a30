"""Checked files whose rows wait to be committed together, with their manifest rows.

A file is read, screened and judged by its row contract in temporary tables; its kept
rows and its refused ones are then held here, and committed with the manifest rows of
every file held beside them in one transaction and ONE insert into ``raw.<name>``.

Why not one transaction per file: DuckDB 1.5 writes a large insert straight to the
database file in whole row groups (122,880 rows), but a commit's last, partial row group
is merged with its neighbours at the next checkpoint, which rewrites them.  Thirty order
files of 167k rows each, committed one by one, cost 15.8 CPU s to store 5M rows; the same
rows in one insert cost 7 s (and half the file size).  Several inserts in one
transaction, or one insert over a union of per-file tables, are as costly as a commit per
file, so the held rows live in one temporary table.

Exactly-once holds as before: a file's rows, its refused rows and its manifest row
commit together or not at all (a crash loses only the work held, and the next run
takes those files again).  ``flush_rows`` bounds the memory held: the files held are
committed once they hold that many rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from training_pipeline.ingestion.manifest import FileOutcome, StatSignature, write_manifest
from training_pipeline.ingestion.rejected_rows import (
    VIOLATIONS,
    Provenance,
    insert_kept,
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


@dataclass(frozen=True)
class Held:
    rows_in: int
    rows_kept: int
    rows_rejected: int


@dataclass
class PendingFiles:
    """The files of one source held for one commit; ``flush`` commits them."""

    con: duckdb.DuckDBPyConnection
    contract: RowContract
    ledger_source: str  # the source's ledger id (manifest ``source``)
    batch_id: str
    processed_at: datetime
    flush_rows: int = FLUSH_ROWS
    _outcomes: list[tuple[FileOutcome, StatSignature]] = field(default_factory=list)
    _rows: int = 0
    _open: bool = False  # whether this run's holding tables exist

    @property
    def _kept_table(self) -> str:
        return quote_identifier(f"_pending_rows_{self.contract.table}")

    @property
    def _refused_table(self) -> str:
        return quote_identifier(f"_pending_refused_{self.contract.table}")

    def hold_rows(
        self,
        incoming: str,
        provenance: Provenance,
        limits: RowContractLimits,
    ) -> Held:
        """Judge the rows of ``incoming`` (contract columns as text and ``_record``) and
        hold the kept and the refused ones; ``incoming`` may be dropped afterwards."""
        if not self._open:
            # Replaced, not reused: a run that failed on this connection left its own.
            raw = f"{RAW_SCHEMA}.{quote_identifier(self.contract.table)}"
            self.con.execute(
                f"create or replace temp table {self._kept_table} as select * from {raw} limit 0"
            ).fetchall()
            self.con.execute(
                f"create or replace temp table {self._refused_table} as "
                f"select * from {REJECTED_ROWS} limit 0"
            ).fetchall()
            self._open = True
        judge_rows(self.con, self.contract, incoming, provenance.ingested_at, limits)
        rejected = record_violations(self.con, self.contract, provenance, self._refused_table)
        kept = insert_kept(self.con, self.contract, incoming, provenance, self._kept_table)
        self.con.execute(f"drop table {VIOLATIONS}").fetchall()
        ((rows_in,),) = self.con.execute(f"select count(*) from {incoming}").fetchall()
        return Held(rows_in, kept, rejected)

    def enlist(self, outcome: FileOutcome, stat_key: StatSignature) -> None:
        """Add a held file's manifest row; commit everything held once it is enough."""
        self._outcomes.append((outcome, stat_key))
        self._rows += outcome.rows_loaded
        if self._rows >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        """Commit every held file: its kept rows, its refused rows, its manifest row."""
        if not self._outcomes:
            return
        raw = f"{RAW_SCHEMA}.{quote_identifier(self.contract.table)}"
        with transaction(self.con):
            self.con.execute(f"insert into {raw} select * from {self._kept_table}").fetchall()
            self.con.execute(
                f"insert into {REJECTED_ROWS} select * from {self._refused_table}"
            ).fetchall()
            for outcome, stat_key in self._outcomes:
                write_manifest(
                    self.con,
                    self.ledger_source,
                    outcome,
                    stat_key,
                    self.batch_id,
                    self.processed_at,
                )
        self.con.execute(f"drop table {self._kept_table}").fetchall()
        self.con.execute(f"drop table {self._refused_table}").fetchall()
        self._outcomes, self._rows, self._open = [], 0, False
