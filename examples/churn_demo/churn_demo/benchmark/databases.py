"""Throw-away PostgreSQL databases for benchmarks and tests: one per run, dropped after,
so runs sharing a server never see each other's tables."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa


@contextmanager
def created_database(admin_url: str, prefix: str) -> Iterator[sa.URL]:
    """A new database ``<prefix>_<random>`` on ``admin_url``'s server, dropped afterwards.

    Raises:
        sqlalchemy.exc.OperationalError: the server is not reachable.
    """
    admin = sa.create_engine(
        admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'create database "{name}"'))
    except sa.exc.OperationalError:
        admin.dispose()
        raise
    try:
        yield sa.make_url(admin_url).set(database=name)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()
