"""What the text of a setting may be: each parser returns the value or raises
``ValueError`` saying what is wrong (``environment.Variable`` adds the variable's name,
the value and what is allowed).

URLs are checked for their syntax only (nothing connects here): SQLAlchemy's
``make_url`` and its dialect registry for database URLs, scheme and host for HTTP ones.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

# Below this DuckDB cannot even sort a couple of million short rows (measured: 16MB fails).
MIN_DUCKDB_MEMORY_BYTES = 64 * 1000**2
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]i?B)", re.IGNORECASE)
_UNIT_BYTES = {
    unit: base**power
    for power, letter in enumerate("KMGT", start=1)
    for unit, base in ((f"{letter}B", 1000), (f"{letter}IB", 1024))
}


def memory_size(text: str) -> str:
    match = _MEMORY.fullmatch(text.strip())
    if match is None:
        raise ValueError("it is not a memory size")
    number, unit = match.groups()
    if float(number) * _UNIT_BYTES[unit.upper()] < MIN_DUCKDB_MEMORY_BYTES:
        raise ValueError("it is too small: DuckDB needs at least 64MB to run queries")
    return f"{number}{unit}"


def whole_number(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not re.fullmatch(r"\+?\d+", text.strip()):
            raise ValueError("it is not a whole number")
        if int(text) < minimum:
            raise ValueError(f"it is less than {minimum}")
        return int(text)

    return parse


def number(low: float, high: float = math.inf, *, low_open: bool = False) -> Callable[[str], float]:
    """A finite number in [low, high], or (low, high] when ``low_open``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError("it is not a number") from None
        if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
            raise ValueError("it is out of range")
        return value

    return parse


def one_of(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.strip().lower() not in choices:
            raise ValueError("it is not one of the choices")
        return text.strip().lower()

    return parse


def duration(text: str) -> str:
    """``30m``, ``6h``, ``1d``: checked here, converted where it is used (spec/model_parts.py)."""
    if not re.fullmatch(r"\d+[smhdw]", text.strip()):
        raise ValueError("it is not a duration")
    return text.strip()


def directory(text: str) -> Path:
    if not text.strip():
        raise ValueError("it is empty")
    return Path(text).expanduser()


def cron(text: str) -> str:
    from dagster._utils.schedules import is_valid_cron_string

    if not is_valid_cron_string(text):
        raise ValueError("it is not a cron string")
    return text


def database_url(text: str) -> str:
    """A SQLAlchemy URL of an installed dialect; the driver itself loads only to connect."""
    import sqlalchemy as sa

    try:
        url = sa.make_url(text.strip())
    except sa.exc.ArgumentError:
        raise ValueError("it is not a SQLAlchemy database URL") from None
    try:
        url.get_dialect()
    except sa.exc.NoSuchModuleError:
        raise ValueError(f"SQLAlchemy knows no database {url.drivername!r}") from None
    return text.strip()


def postgres_url(text: str) -> str:
    """A ``postgresql://`` URL with a host and a database, as libpq (DuckDB's postgres
    extension) reads it."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError("its scheme is not postgresql")
    if not parts.hostname or not parts.path.strip("/"):
        raise ValueError("it names no host or no database")
    return text.strip()


def lake_data_path(text: str) -> str:
    """An ``s3://bucket/prefix`` or an absolute folder (a relative one would move with
    each process's working directory)."""
    text = text.strip()
    if text.startswith("s3://"):
        if not urlsplit(text).netloc:
            raise ValueError("it names no bucket")
        return text
    if "://" in text or not text.startswith("/"):
        raise ValueError("it is neither an s3:// URL nor an absolute folder")
    return text


def s3_prefix(text: str) -> str:
    """An ``s3://bucket/prefix`` (the prefix may be empty), without a trailing slash."""
    parts = urlsplit(text.strip())
    if parts.scheme != "s3":
        raise ValueError("its scheme is not s3")
    if not parts.netloc:
        raise ValueError("it names no bucket")
    if parts.query or parts.fragment:
        raise ValueError("it has a ?query or #fragment, which S3 keys do not take")
    return text.strip().rstrip("/")


def http_url(text: str) -> str:
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https"):
        raise ValueError("its scheme is not http or https")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError("its port is not a number from 0 to 65535") from None
    if not parts.hostname:
        raise ValueError("it names no host")
    return text.strip()


def service_url(*schemes: str) -> Callable[[str], str]:
    """A URL of a network service (a message broker, a result store) in one of ``schemes``."""

    def parse(text: str) -> str:
        parts = urlsplit(text.strip())
        if parts.scheme not in schemes:
            raise ValueError(f"its scheme is not one of {', '.join(schemes)}")
        if not parts.hostname:
            raise ValueError("it names no host")
        return text.strip()

    return parse


def queue_name(text: str) -> str:
    """A message queue's name: letters, digits, ``_``, ``-`` and ``.``."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", text.strip()):
        raise ValueError("it is not a queue name")
    return text.strip()


def optional_http_url(text: str) -> str | None:
    """Empty means not configured."""
    return http_url(text) if text.strip() else None
