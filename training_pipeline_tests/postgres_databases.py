"""Throw-away databases on the test PostgreSQL server (TRAINING_PIPELINE_TEST_POSTGRES_URL),
one per test, so tests and engineers sharing the server never see each other's tables."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
import sqlalchemy as sa
from churn_demo.benchmark.databases import created_database

POSTGRES_URL = os.environ.get(
    "TRAINING_PIPELINE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def throwaway_database(prefix: str) -> Iterator[sa.URL]:
    """A new database named ``<prefix>_<random>``, dropped afterwards; skips the test
    with the reason when the server is not reachable."""
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
