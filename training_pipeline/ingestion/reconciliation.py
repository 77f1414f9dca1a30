"""Does every row a files source landed sit in its ``raw.<name>`` table, in the
rejected-rows ledger or in quarantine?  Counted, not assumed, per source:
landed = loaded + rejected + quarantined."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from training_pipeline.ingestion.warehouse import RAW_SCHEMA, REJECTED_ROWS, quote_identifier
from training_pipeline.spec.sources import FilesSource


@dataclass(frozen=True)
class Reconciliation:
    files_loaded: int
    files_quarantined: int
    rows_landed: int
    rows_loaded: int
    rows_quarantined: int
    # Deliveries whose rows in raw.<name> differ from what the manifest says was loaded.
    mismatched: tuple[tuple[str, str, int, int], ...]
    rows_rejected: int = 0
    # Deliveries whose rows in raw.rejected_rows differ from the manifest's count.
    mismatched_rejections: tuple[tuple[str, str, int, int], ...] = ()

    @property
    def holds(self) -> bool:
        return (
            not self.mismatched
            and not self.mismatched_rejections
            and self.rows_landed == self.rows_loaded + self.rows_rejected + self.rows_quarantined
        )


_MISMATCHED = """
    with present as (
        select {ref} as path, {batch} as batch_id, count(*) as n
        from {table} {where}
        group by all
    ),
    expected as (
        select path, batch_id, coalesce({counted}, 0) as n
        from {manifest}
        where status = 'loaded' and source = $source
    )
    select
        coalesce(e.path, p.path), coalesce(e.batch_id, p.batch_id),
        coalesce(e.n, 0), coalesce(p.n, 0)
    from expected e
    full outer join present p using (path, batch_id)
    where coalesce(e.n, 0) <> coalesce(p.n, 0)
    order by 1, 2
"""


def reconcile_files(con: duckdb.DuckDBPyConnection, source: FilesSource) -> Reconciliation:
    """Compare the source's part of the manifest with the rows actually present in its
    raw table and in the rejected-rows ledger."""
    ledger = {"source": source.ledger}
    ((files_loaded, files_quarantined, landed, quarantined),) = con.execute(
        f"""
        select
            count(*) filter (where status = 'loaded'),
            count(*) filter (where status = 'quarantined'),
            coalesce(sum(rows_landed), 0),
            coalesce(sum(rows_landed) filter (where status = 'quarantined'), 0)
        from {RAW_SCHEMA}.file_manifest
        where source = $source
        """,
        ledger,
    ).fetchall()
    manifest = f"{RAW_SCHEMA}.file_manifest"
    raw_table = f"{RAW_SCHEMA}.{quote_identifier(source.name)}"
    mismatched = con.execute(
        _MISMATCHED.format(
            ref="_source_ref",
            batch="_batch_id",
            table=raw_table,
            where="",
            counted="rows_loaded",
            manifest=manifest,
        ),
        ledger,
    ).fetchall()
    rejections = {**ledger, "table": source.name}
    mismatched_rejections = con.execute(
        _MISMATCHED.format(
            ref="source_ref",
            batch="batch_id",
            table=REJECTED_ROWS,
            where="where raw_table = $table and source = $source",
            counted="rows_rejected",
            manifest=manifest,
        ),
        rejections,
    ).fetchall()
    ((rejected,),) = con.execute(
        f"select count(*) from {REJECTED_ROWS} where raw_table = $table and source = $source",
        rejections,
    ).fetchall()
    ((loaded,),) = con.execute(f"select count(*) from {raw_table}").fetchall()
    return Reconciliation(
        files_loaded,
        files_quarantined,
        int(landed),
        int(loaded),
        int(quarantined),
        tuple(tuple(row) for row in mismatched),
        int(rejected),
        tuple(tuple(row) for row in mismatched_rejections),
    )
