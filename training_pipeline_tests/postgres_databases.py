"""Throw-away databases on the test PostgreSQL server (TRAINING_PIPELINE_TEST_POSTGRES_URL),
one per test, so tests and engineers sharing the server never see each other's tables."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

POSTGRES_URL = os.environ.get(
    "TRAINING_PIPELINE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def throwaway_database(prefix: str) -> Iterator[sa.URL]:
    """A new database named ``<prefix>_<random>``, dropped afterwards; skips the test
    with the reason when the server is not reachable."""
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


def url_text(url: sa.URL, driver: str | None = None) -> str:
    """``url`` as text, its password kept, with ``driver`` (e.g. ``psycopg2``) if given."""
    if driver is not None:
        url = url.set(drivername=f"postgresql+{driver}")
    return url.render_as_string(hide_password=False)
