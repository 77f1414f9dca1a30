"""What every declared source's raw asset shares, whatever its kind.

Its key ``raw/<name>``, its resource key ``source__<name>``, its column schema (the
contract's columns, kept as delivered text, then the provenance columns) and the end of
its batch: the ledger row in ``raw.ingestion_batches`` and the ``rows_rejected`` check.
For sources read in one go (``sql_table``, ``http_api``), ``one_batch`` also holds the
transaction: rows, rejected rows, moved cursor and ledger row commit together or not at
all.  A files source commits per file (``ingestion/landing_ingest.py``) and records its
batch after.

Every raw materialization carries a data version: the newest batch of its source that
loaded rows.  A batch that loads nothing keeps the version, so automation downstream
(``assets/dbt_translator.py``) has nothing to rebuild.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

import dagster as dg
import duckdb

from training_pipeline.assets.rejections import rows_rejected_check, rows_rejected_spec
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.resources import WAREHOUSE_POOL
from training_pipeline.spec.sources import Source, SourceSystem

GROUP = "ingestion"
KINDS_TAG = {"files": "file", "sql_table": "sql", "http_api": "api"}
PROVENANCE = (
    ("_source", "varchar", "the source's ledger id"),
    ("_source_ref", "varchar", "what was read: the file, the query or the API page"),
    ("_batch_id", "varchar", "ingestion batch (raw.ingestion_batches)"),
    ("_ingested_at", "timestamp", "batch time, UTC"),
)


RESOURCE_PREFIX = "source__"


def source_resource_key(source: Source) -> str:
    return f"{RESOURCE_PREFIX}{source.name}"


def raw_asset_key(source: Source) -> dg.AssetKey:
    return dg.AssetKey(list(source.asset_key_path))


def column_schema(source: Source) -> dg.TableSchema:
    """The declared columns, kept as delivered text, then the provenance columns."""
    columns = [
        dg.TableColumn(name, "varchar", description=column.description)
        for name, column in source.contract.columns.items()
    ]
    columns += [dg.TableColumn(n, t, description=d) for n, t, d in PROVENANCE]
    return dg.TableSchema(columns=columns)


def raw_asset_spec(
    system: SourceSystem, source: Source, description: str, checks: Sequence[dg.AssetCheckSpec] = ()
) -> dict:
    """The ``@dg.asset`` arguments every raw asset has, with its kind's checks added."""
    key = raw_asset_key(source)
    return {
        "key": key,
        "group_name": GROUP,
        "owners": [system.owner] if system.owner else None,
        "kinds": {"duckdb", KINDS_TAG[source.kind]},
        "pool": WAREHOUSE_POOL,
        "description": description,
        "metadata": {
            "dagster/column_schema": column_schema(source),
            "source_system": system.system,
        },
        "check_specs": [*checks, rows_rejected_spec(key)],
        "required_resource_keys": {
            "warehouse",
            "row_contract",
            "alerts",
            source_resource_key(source),
        },
    }


class Counted(Protocol):
    """What the ledger row needs of any kind's report."""

    @property
    def rows_loaded(self) -> int: ...

    @property
    def rows_rejected(self) -> int: ...


class BatchReport(Counted, Protocol):
    @property
    def rows_read(self) -> int: ...


@dataclass(frozen=True)
class Batch:
    batch_id: str
    started_at: datetime


@dataclass(frozen=True)
class Closed:
    """What the end of a batch gives the asset: its check and the table's row count."""

    check: dg.AssetCheckResult
    total_rows: int
    data_version: dg.DataVersion


def close_batch(
    context: dg.AssetExecutionContext,
    con: duckdb.DuckDBPyConnection,
    source: Source,
    batch: Batch,
    report: Counted,
    refs: Sequence[str],
) -> None:
    """The batch's ledger row (inside the caller's transaction when it holds one)."""
    wh.record_batch(
        con,
        batch_id=batch.batch_id,
        source=source.ledger,
        started_at=batch.started_at,
        rows_loaded=report.rows_loaded,
        refs=refs,
        run_id=context.run.run_id,
        kind=source.kind,
        rows_rejected=report.rows_rejected,
    )


def judge_batch(
    context: dg.AssetExecutionContext,
    con: duckdb.DuckDBPyConnection,
    source: Source,
    batch: Batch,
    rows_read: int,
) -> Closed:
    """The ``rows_rejected`` check of the batch and the raw table's size after it."""
    resources = context.resources
    check = rows_rejected_check(
        context,
        con,
        raw_asset_key(source),
        batch.batch_id,
        rows_read,
        resources.row_contract.limits(),
        resources.alerts,
    )
    total_rows = wh.table_row_count(con, wh.RAW_SCHEMA, source.name) or 0
    return Closed(check, total_rows, raw_data_version(con, source))


def raw_data_version(con: duckdb.DuckDBPyConnection, source: Source) -> dg.DataVersion:
    """The newest batch that brought rows: unchanged by a batch that loads nothing."""
    return dg.DataVersion(wh.last_batch_with_rows(con, source.ledger) or "no rows yet")


def new_batch(source: Source) -> Batch:
    return Batch(wh.new_batch_id(source.ledger), wh.utc_now())


R = TypeVar("R", bound=BatchReport)


def one_batch(
    context: dg.AssetExecutionContext,
    source: Source,
    load: Callable[[duckdb.DuckDBPyConnection, Batch], tuple[R, Sequence[str]]],
    prepare: Callable[[duckdb.DuckDBPyConnection], None] = lambda con: None,
) -> tuple[R, Batch, Closed]:
    """Run ``load`` (rows, rejected rows, cursor) and the ledger row in one transaction,
    then judge the batch.  ``load`` returns its report and the refs it read."""
    batch = new_batch(source)
    with context.resources.warehouse.connect() as con:
        wh.ensure_raw_layer(con)
        prepare(con)
        with wh.transaction(con):
            report, refs = load(con, batch)
            close_batch(context, con, source, batch, report, refs)
        closed = judge_batch(context, con, source, batch, report.rows_read)
    return report, batch, closed
