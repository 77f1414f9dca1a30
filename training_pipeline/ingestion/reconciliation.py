"""Does every landed order row sit in raw.orders or in quarantine?  Counted, not assumed."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from training_pipeline.ingestion.warehouse import RAW_SCHEMA


@dataclass(frozen=True)
class Reconciliation:
    files_loaded: int
    files_quarantined: int
    rows_landed: int
    rows_loaded: int
    rows_quarantined: int
    # Deliveries whose rows in raw.orders differ from what the manifest says was loaded.
    mismatched: tuple[tuple[str, str, int, int], ...]

    @property
    def holds(self) -> bool:
        return not self.mismatched and (
            self.rows_landed == self.rows_loaded + self.rows_quarantined
        )


def reconcile_order_files(con: duckdb.DuckDBPyConnection) -> Reconciliation:
    """Compare the manifest's ledger with the rows actually present in raw.orders."""
    ((files_loaded, files_quarantined, landed, quarantined),) = con.execute(
        f"""
        select
            count(*) filter (where status = 'loaded'),
            count(*) filter (where status = 'quarantined'),
            coalesce(sum(rows_landed), 0),
            coalesce(sum(rows_landed) filter (where status = 'quarantined'), 0)
        from {RAW_SCHEMA}.file_manifest
        """
    ).fetchall()
    mismatched = con.execute(
        f"""
        with present as (
            select _source_ref as path, _batch_id as batch_id, count(*) as n
            from {RAW_SCHEMA}.orders
            group by all
        ),
        expected as (
            select path, batch_id, rows_loaded as n
            from {RAW_SCHEMA}.file_manifest
            where status = 'loaded'
        )
        select
            coalesce(e.path, p.path), coalesce(e.batch_id, p.batch_id),
            coalesce(e.n, 0), coalesce(p.n, 0)
        from expected e
        full outer join present p using (path, batch_id)
        where coalesce(e.n, 0) <> coalesce(p.n, 0)
        order by 1, 2
        """
    ).fetchall()
    ((loaded,),) = con.execute(f"select count(*) from {RAW_SCHEMA}.orders").fetchall()
    return Reconciliation(
        files_loaded,
        files_quarantined,
        int(landed),
        int(loaded),
        int(quarantined),
        tuple(tuple(row) for row in mismatched),
    )
