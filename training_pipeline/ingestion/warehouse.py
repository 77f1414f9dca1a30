"""The DuckDB warehouse's raw layer: connections, tables and the bookkeeping beside them.

DuckDB lets one process write a database file at a time, and a read-only connection
cannot open it while another process writes.  Nothing here retries or sleeps around
that: every Dagster step that opens the file is in the ``warehouse`` concurrency pool
(limit 1), so steps take turns instead of colliding.  A DuckLake warehouse (``lake.py``)
admits several writers; the pool's limit is then its ``writers``.

Every connection is confined to the warehouse's folder, the data directory: DuckDB's
file readers and writers (``read_csv``, ``COPY``, ``ATTACH``, extension installs) refuse
any path outside it, symlinks that lead out included, and its memory and threads are
capped by ``TRAINING_PIPELINE_DUCKDB_MEMORY_LIMIT`` / ``_THREADS``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from training_pipeline.ingestion.lake import DuckLake, open_lake
from training_pipeline.settings import DUCKDB_TEMP_DIR_NAME, DuckDBLimits

RAW_SCHEMA = "raw"
REJECTED_ROWS = f"{RAW_SCHEMA}.rejected_rows"

PROVENANCE_COLUMNS: tuple[str, ...] = ("_source", "_source_ref", "_batch_id", "_ingested_at")

# The ledger id of the one files source that existed before ``raw.file_manifest`` had a
# ``source`` column: rows of a warehouse from then are that source's.
LEGACY_MANIFEST_SOURCE = "order_files"

_BOOKKEEPING_DDL = (
    f"""
    create table if not exists {RAW_SCHEMA}.ingestion_batches (
        batch_id varchar not null{{primary_key}},
        source varchar not null,
        started_at timestamp not null,
        finished_at timestamp not null,
        rows_loaded bigint not null,
        refs varchar[] not null,
        run_id varchar,
        rows_rejected bigint default 0,
        kind varchar
    )""",
    f"""
    create table if not exists {RAW_SCHEMA}.file_manifest (
        source varchar not null,
        path varchar not null,
        sha256 varchar not null,
        size_bytes bigint not null,
        mtime_ns bigint not null,
        ctime_ns bigint not null,
        format varchar not null,
        status varchar not null{{status_check}},
        rows_landed bigint,
        rows_loaded bigint not null,
        batch_id varchar not null,
        processed_at timestamp not null,
        reason varchar,
        quarantine_path varchar,
        rows_rejected bigint default 0
    )""",
    # Rows a source delivered that broke its row contract (row_contract.py): one row each.
    f"""
    create table if not exists {REJECTED_ROWS} (
        source varchar not null,
        raw_table varchar not null,
        source_ref varchar not null,
        batch_id varchar not null,
        record_number bigint not null,
        column_name varchar not null,
        value varchar,
        rule varchar not null,
        detail varchar not null,
        row_json varchar not null,
        rejected_at timestamp not null
    )""",
    f"""
    create table if not exists {RAW_SCHEMA}.source_cursors (
        source varchar not null{{primary_key}},
        cursor_value varchar not null,
        updated_at timestamp not null
    )""",
)


def utc_now() -> datetime:
    """Naive UTC: the warehouse stores every timestamp in UTC without a zone."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_batch_id(source: str) -> str:
    return f"{source}-{utc_now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def quote_identifier(name: str) -> str:
    """Quote a column or table name for DuckDB, whatever characters it holds."""
    return '"' + name.replace('"', '""') + '"'


WAL_CHECKPOINT_BYTES = "1GB"


@contextmanager
def connect(
    path: Path,
    *,
    limits: DuckDBLimits,
    read_only: bool = False,
    lake: DuckLake | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse; writers create it (and its folder) on first use.

    ``limits`` are the settings' (``Settings.duckdb``); the connection can read and
    write files only inside ``path``'s folder (and a DuckLake's data path).  With
    ``lake`` the warehouse is that DuckLake, and ``path`` only places the data directory.
    """
    if lake is None and read_only and not path.exists():
        raise FileNotFoundError(
            f"warehouse {path} does not exist yet: materialize the ingestion assets first"
        )
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    data_dir = path.parent.resolve()
    config: dict[str, str | int | bool] = {
        "memory_limit": limits.memory_limit,
        "threads": limits.threads,
        "temp_directory": str(data_dir / DUCKDB_TEMP_DIR_NAME),
        # icu, json and parquet are statically linked, DuckLake's come from their wheels
        # (lake.py): never download any.
        "autoinstall_known_extensions": False,
        # Writers fold the WAL into the file when they close (below), once; checkpointing
        # every 16 MB of WAL on the way wrote a large ingestion twice (a fifth of its CPU).
        "checkpoint_threshold": WAL_CHECKPOINT_BYTES,
    }
    database = ":memory:" if lake else str(path)
    con = duckdb.connect(database, read_only=read_only and not lake, config=config)
    try:
        if lake is None:
            confine(con, data_dir)
        else:
            # Several processes may open a new lake at once: its raw layer is made once.
            open_lake(con, lake, read_only=read_only, setup=ensure_raw_layer)
            confine_beside_lake(con, data_dir, lake)
        yield con
        if not read_only and lake is None:
            # Fold the WAL into the file so a crash later cannot lose a finished step.
            # (A DuckLake's commits are durable in its catalog when they return.)
            con.execute("checkpoint").fetchall()
    finally:
        con.close()


def confine(con: duckdb.DuckDBPyConnection, *directories: Path, remote: Sequence[str] = ()) -> None:
    """Let the connection touch files only under ``directories`` (and the ``remote``
    prefixes, e.g. a DuckLake's ``s3://`` data path), for the rest of its life.

    DuckDB takes ``allowed_directories`` only while external access is still enabled,
    and external access cannot be re-enabled once disabled, so the order is fixed.
    """
    allowed = [str(d.resolve()) for d in directories] + list(remote)
    con.execute("set allowed_directories = ?", [allowed]).fetchall()
    con.execute("set enable_external_access = false").fetchall()


def confine_beside_lake(con: duckdb.DuckDBPyConnection, data_dir: Path, lake: DuckLake) -> None:
    """Confine a connection with ``lake`` attached to ``data_dir`` and the lake's data path."""
    if lake.on_s3:
        confine(con, data_dir, remote=(lake.data_prefix,))
    else:
        confine(con, data_dir, Path(lake.data_path))


def is_lake(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the connection's default catalog is a DuckLake, which keeps no primary
    key, unique or check constraint."""
    query = "select type from duckdb_databases() where database_name = current_database()"
    return con.execute(query).fetchall()[0][0] == "ducklake"


def ensure_raw_table(con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str]) -> None:
    """Create ``raw.<table>``: the business columns as delivered text, then provenance."""
    con.execute(f"create schema if not exists {RAW_SCHEMA}").fetchall()
    business = ", ".join(f"{quote_identifier(c)} varchar" for c in columns)
    con.execute(
        f"create table if not exists {RAW_SCHEMA}.{quote_identifier(table)} ({business}, "
        "_source varchar not null, _source_ref varchar not null, "
        "_batch_id varchar not null, _ingested_at timestamp not null)"
    ).fetchall()


def ensure_raw_layer(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw schema, its tables and the ingestion bookkeeping if absent."""
    con.execute(f"create schema if not exists {RAW_SCHEMA}").fetchall()
    lake = is_lake(con)
    constraints = {
        "primary_key": "" if lake else " primary key",
        "status_check": "" if lake else " check (status in ('loaded', 'quarantined'))",
    }
    for ddl in _BOOKKEEPING_DDL:
        con.execute(ddl.format(**constraints)).fetchall()
    # Before manifests were kept per source, order files were the only files source.
    con.execute(
        f"alter table {RAW_SCHEMA}.file_manifest add column if not exists source varchar "
        f"default '{LEGACY_MANIFEST_SOURCE}'"
    ).fetchall()
    # Warehouses created before row contracts lack these columns; nothing was rejected then.
    for table in ("file_manifest", "ingestion_batches"):
        con.execute(
            f"alter table {RAW_SCHEMA}.{table} "
            "add column if not exists rows_rejected bigint default 0"
        ).fetchall()
    # Batches recorded before the ledger named the source's kind keep a null one; lineage
    # finds a batch's kind from its source's declaration.
    con.execute(
        f"alter table {RAW_SCHEMA}.ingestion_batches add column if not exists kind varchar"
    ).fetchall()


def record_batch(
    con: duckdb.DuckDBPyConnection,
    *,
    batch_id: str,
    source: str,
    started_at: datetime,
    rows_loaded: int,
    refs: Sequence[str],
    run_id: str | None,
    kind: str,
    rows_rejected: int = 0,
) -> None:
    con.execute(
        f"insert into {RAW_SCHEMA}.ingestion_batches (batch_id, source, started_at, "
        "finished_at, rows_loaded, refs, run_id, rows_rejected, kind) "
        "values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            batch_id,
            source,
            started_at,
            utc_now(),
            rows_loaded,
            list(refs),
            run_id,
            rows_rejected,
            kind,
        ],
    ).fetchall()


def last_batch_with_rows(con: duckdb.DuckDBPyConnection, source: str) -> str | None:
    """The newest batch of ``source`` (its ledger id) that loaded a row, or None."""
    rows = con.execute(
        f"select batch_id from {RAW_SCHEMA}.ingestion_batches "
        "where source = ? and rows_loaded > 0 order by started_at desc, batch_id desc limit 1",
        [source],
    ).fetchall()
    return rows[0][0] if rows else None


def read_cursor(con: duckdb.DuckDBPyConnection, source: str) -> str | None:
    rows = con.execute(
        f"select cursor_value from {RAW_SCHEMA}.source_cursors where source = ?", [source]
    ).fetchall()
    return rows[0][0] if rows else None


def write_cursor(con: duckdb.DuckDBPyConnection, source: str, value: str) -> None:
    if is_lake(con):  # no primary key to replace on: the caller's transaction holds both
        con.execute(
            f"delete from {RAW_SCHEMA}.source_cursors where source = ?", [source]
        ).fetchall()
        verb = "insert"
    else:
        verb = "insert or replace"
    con.execute(
        f"{verb} into {RAW_SCHEMA}.source_cursors values (?, ?, ?)", [source, value, utc_now()]
    ).fetchall()


def table_row_count(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> int | None:
    """Row count of a table, or None when it does not exist (yet)."""
    exists = con.execute(
        "select count(*) from information_schema.tables where table_catalog = current_database() "
        "and table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()[0][0]
    if not exists:
        return None
    query = f"select count(*) from {quote_identifier(schema)}.{quote_identifier(table)}"
    return con.execute(query).fetchall()[0][0]


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """All of the block's writes, or none of them."""
    con.execute("begin transaction").fetchall()
    try:
        yield
    except BaseException:
        con.execute("rollback").fetchall()
        raise
    con.execute("commit").fetchall()
