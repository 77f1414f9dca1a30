"""What a batch's rejected rows add up to: counts by rule, the first examples, a verdict."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from training_pipeline.ingestion.warehouse import REJECTED_ROWS as LEDGER


@dataclass(frozen=True)
class BatchRejections:
    rows_rejected: int
    by_rule: dict[str, int]
    examples: list[dict[str, object]]  # the first few, enough to find the rows


def batch_rejections(
    con: duckdb.DuckDBPyConnection, batch_id: str, examples: int = 10
) -> BatchRejections:
    by_rule = dict(
        con.execute(
            f"select rule, count(*) from {LEDGER} where batch_id = ? group by rule order by rule",
            [batch_id],
        ).fetchall()
    )
    rows = con.execute(
        f"select source_ref, record_number, column_name, value, rule, detail from {LEDGER} "
        "where batch_id = ? order by source_ref, record_number limit ?",
        [batch_id, examples],
    ).fetchall()
    names = ("source_ref", "record_number", "column", "value", "rule", "detail")
    return BatchRejections(
        sum(by_rule.values()), by_rule, [dict(zip(names, row, strict=True)) for row in rows]
    )


@dataclass(frozen=True)
class Verdict:
    """What a batch's rejections mean: fine, a warning, or a block on what depends on it."""

    rows_in_batch: int
    rows_rejected: int
    max_share: float

    @property
    def share(self) -> float:
        return self.rows_rejected / self.rows_in_batch if self.rows_in_batch else 0.0

    @property
    def passed(self) -> bool:
        return self.rows_rejected == 0

    @property
    def blocks(self) -> bool:
        """More than ``max_share`` of the batch refused: something upstream is broken, so
        the batch's assets downstream wait (the rows that kept the contract are loaded,
        and the next batch is judged on its own)."""
        return self.share > self.max_share

    def summary(self) -> str:
        if self.passed:
            return f"no rows rejected of {self.rows_in_batch}"
        return (
            f"{self.rows_rejected} of {self.rows_in_batch} rows rejected ({self.share:.1%}); "
            f"above {self.max_share:.1%} blocks downstream"
        )
