"""Throw-away databases on the local PostgreSQL server (TRAINING_PIPELINE_TEST_POSTGRES_URL):
one per test, dropped after it, so tests and engineers sharing the server never see each
other's tables; the test skips, saying why, when the server is not reachable."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
import sqlalchemy as sa
from churn_demo.benchmark.databases import created_database

# The server's maintenance database; each test creates its own database beside it.
POSTGRES_URL = os.environ.get(
    "TRAINING_PIPELINE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def fresh_database(prefix: str) -> Iterator[sa.URL]:
    """The URL of a new, empty database named ``<prefix>_<random>``, dropped afterwards."""
    with ExitStack() as stack:
        try:
            url = stack.enter_context(created_database(POSTGRES_URL, prefix))
        except sa.exc.OperationalError as error:
            pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {error.orig}")
        yield url


def url_text(url: sa.URL, driver: str | None = None) -> str:
    """``url`` as text, its password kept, with ``driver`` (e.g. ``psycopg2``) if given."""
    if driver is not None:
        url = url.set(drivername=f"postgresql+{driver}")
    return url.render_as_string(hide_password=False)


@pytest.fixture
def lake_catalog() -> Iterator[str]:
    """A DuckLake catalog database's plain ``postgresql://`` URL (libpq reads it)."""
    with fresh_database("tp_scale_lake") as url:
        yield url_text(url.set(drivername="postgresql"))
