"""Throw-away databases on the local PostgreSQL server: one per test, dropped after it;
the test skips, saying why, when the server is not reachable."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

# The server's maintenance database; each test creates its own database beside it.
POSTGRES_URL = os.environ.get(
    "TRAINING_PIPELINE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def fresh_database(prefix: str) -> Iterator[sa.URL]:
    """The URL of a new, empty database named ``<prefix>_<random>``, dropped afterwards."""
    admin = sa.create_engine(
        POSTGRES_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'create database "{name}"'))
    except sa.exc.OperationalError as error:
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {error.orig}")
    try:
        yield sa.make_url(POSTGRES_URL).set(database=name)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()


@pytest.fixture
def lake_catalog() -> Iterator[str]:
    """A DuckLake catalog database's plain ``postgresql://`` URL (libpq reads it)."""
    with fresh_database("tp_scale_lake") as url:
        yield url.set(drivername="postgresql").render_as_string(hide_password=False)
