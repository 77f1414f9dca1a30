"""DuckLake: the warehouse as a catalog in Postgres and Parquet files in a folder or on S3.

A DuckDB file admits one writing process at a time; a DuckLake admits several, because
each commit is a transaction in the Postgres catalog and data files are never rewritten
in place.  The same SQL runs on both, with two differences the raw layer allows for:
DuckLake keeps no PRIMARY KEY, UNIQUE or CHECK constraints (``warehouse.py`` writes the
bookkeeping without relying on them).

Its three DuckDB extensions come from the PyPI wheels ``duckdb-extension-*`` installed
with the project and are loaded from their files: nothing is ever downloaded, and the
wheels exist for DuckDB 1.5.5 only, hence the pin in pyproject.toml.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import duckdb

ALIAS = "lake"
"""The catalog name a DuckLake is attached as, in the pipeline and in dbt's profile."""

# DuckDB's name of each extension, and the wheel package that ships it.
_EXTENSION_PACKAGES = {
    "postgres_scanner": "duckdb_extension_postgres_scanner",
    "ducklake": "duckdb_extension_ducklake",
    "httpfs": "duckdb_extension_httpfs",
}


@dataclass(frozen=True)
class S3Access:
    """How DuckDB reaches the bucket: the standard AWS variables' values, and an endpoint
    for an S3-compatible server (moto, MinIO) instead of AWS itself."""

    key_id: str = field(repr=False)
    secret: str = field(repr=False)
    region: str = "us-east-1"
    endpoint_url: str | None = None


@dataclass(frozen=True)
class DuckLake:
    """A DuckLake warehouse: ``catalog`` is the Postgres URL of its catalog database
    (it may hold a password), ``data_path`` the folder or ``s3://bucket/prefix/`` its
    data files go to, ``writers`` how many steps may write it at once."""

    catalog: str = field(repr=False)
    data_path: str
    writers: int = 4
    s3: S3Access | None = None

    def __post_init__(self) -> None:
        if self.on_s3 and self.s3 is None:
            raise ValueError(
                f"the DuckLake data path {self.data_path} is on S3 but no S3 "
                "credentials were given (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
            )

    @property
    def on_s3(self) -> bool:
        return self.data_path.startswith("s3://")

    @property
    def data_prefix(self) -> str:
        """The data path with one trailing slash: DuckLake and allowed_directories want it."""
        return self.data_path.rstrip("/") + "/"


def extension_file(name: str) -> Path:
    """The installed wheel's file of DuckDB extension ``name``."""
    package = _EXTENSION_PACKAGES[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"the DuckDB extension {name} is not installed: the package "
            f"{package.replace('_', '-')} is missing (run `make install`)"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    wanted = root / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not wanted.is_file():
        raise RuntimeError(
            f"{package} holds no {name} extension for DuckDB {duckdb.__version__} "
            f"(looked for {wanted}); the wheels match one DuckDB version, pinned in pyproject"
        )
    return wanted


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def prepare(con: duckdb.DuckDBPyConnection, lake: DuckLake) -> None:
    """Load the extensions from their files and give DuckDB the bucket's credentials."""
    names = ("postgres_scanner", "ducklake") + (("httpfs",) if lake.on_s3 else ())
    for name in names:
        con.execute(f"load {_literal(str(extension_file(name)))}").fetchall()
    if lake.s3 is not None:
        con.execute(s3_secret_sql(lake.s3, scope=lake.data_prefix)).fetchall()


def s3_secret_sql(s3: S3Access, scope: str) -> str:
    """A temporary (never persisted) DuckDB secret for the bucket of ``scope``."""
    options = {
        "type": "s3",
        "key_id": s3.key_id,
        "secret": s3.secret,
        "region": s3.region,
        "scope": scope,
    }
    if s3.endpoint_url:
        endpoint = urlsplit(s3.endpoint_url)
        options |= {
            "endpoint": endpoint.netloc,
            "url_style": "path",
            "use_ssl": str(endpoint.scheme == "https").lower(),
        }
    body = ", ".join(
        f"{key} {value if key in ('type', 'use_ssl') else _literal(value)}"
        for key, value in options.items()
    )
    return f"create or replace temporary secret training_pipeline_lake ({body})"


def attach_sql(lake: DuckLake, *, read_only: bool = False) -> str:
    options = f"data_path {_literal(lake.data_prefix)}" + (", read_only" if read_only else "")
    path = _literal("ducklake:postgres:" + lake.catalog)
    return f"attach if not exists {path} as {ALIAS} ({options})"


# Any fixed number: every process setting a lake up takes this lock in its catalog.
_SETUP_LOCK = 0x74706C616B65  # "tplake"
_set_up: set[str] = set()  # the catalogs this process has set up


def set_up_once(lake: DuckLake, setup: Callable[[duckdb.DuckDBPyConnection], None]) -> None:
    """Attach ``lake`` and run ``setup`` (idempotent DDL: the raw layer) on it, one process
    at a time, once per process.

    DuckLake creates its catalog tables on the first attach, unguarded, and two
    transactions that create the same table conflict at commit: two Celery workers whose
    first ingestions opened a new lake at once failed, one with ``duplicate key value
    violates unique constraint "pg_type_typname_nsp_index"``, then (that fixed) with
    ``Transaction conflict - attempting to create table "ingestion_batches"``.  A
    Postgres advisory lock in the catalog database orders these first steps; afterwards
    the tables exist and the steps' own ``create ... if not exists`` change nothing.
    """
    if lake.catalog in _set_up:
        return
    import psycopg  # only a DuckLake needs it

    # The lock is the session's: closing the connection releases it, also on a failure.
    with psycopg.connect(lake.catalog, autocommit=True) as pg:
        pg.execute("select pg_advisory_lock(%s)", (_SETUP_LOCK,))
        with duckdb.connect(config={"autoinstall_known_extensions": False}) as con:
            prepare(con, lake)
            _attach(con, lake, read_only=False)
            setup(con)
    _set_up.add(lake.catalog)


def open_lake(
    con: duckdb.DuckDBPyConnection,
    lake: DuckLake,
    *,
    read_only: bool,
    setup: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> None:
    """Attach ``lake`` and make it the connection's default catalog; a writer first has
    it set up by ``setup`` (``set_up_once``)."""
    prepare(con, lake)
    if not lake.on_s3 and not read_only:
        Path(lake.data_path).mkdir(parents=True, exist_ok=True)
    if setup is not None and not read_only:
        set_up_once(lake, setup)
    _attach(con, lake, read_only=read_only)


def _attach(con: duckdb.DuckDBPyConnection, lake: DuckLake, *, read_only: bool) -> None:
    con.execute(attach_sql(lake, read_only=read_only)).fetchall()
    con.execute(f"use {ALIAS}").fetchall()
