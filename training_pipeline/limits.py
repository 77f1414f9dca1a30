"""What the warehouse's connections, a delivered file and a delivered row may be.

Each limit is read from its ``TRAINING_PIPELINE_*`` variable (``environment.py``) once, by
``Settings.from_env``; a declaration may narrow the landing limits for its own source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from training_pipeline.environment import (
    DEFAULT_DUCKDB_MEMORY_LIMIT,
    DEFAULT_DUCKDB_THREADS,
    FUTURE_TOLERANCE_ENV,
    LANDING_SETTLE_ENV,
    MAX_FILE_BYTES_ENV,
    MAX_LINE_BYTES_ENV,
    MAX_REJECTED_SHARE_ENV,
    MEMORY_LIMIT_ENV,
    THREADS_ENV,
    SettingsError,
    read,
)


@dataclass(frozen=True)
class DuckDBLimits:
    """What every DuckDB connection to the warehouse may use (Python's and dbt's)."""

    memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT
    threads: int = DEFAULT_DUCKDB_THREADS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DuckDBLimits:
        return cls(memory_limit=read(MEMORY_LIMIT_ENV, env), threads=read(THREADS_ENV, env))


@dataclass(frozen=True)
class LimitOrigins:
    """Where each landing limit was set, for the messages that enforce it: the project's
    variable, or a declaration's field (``limits.max_line_bytes of source 'x' in
    <file>``), so a person changes the setting that actually applies."""

    max_file_bytes: str = MAX_FILE_BYTES_ENV
    max_line_bytes: str = MAX_LINE_BYTES_ENV
    settle_s: str = LANDING_SETTLE_ENV


@dataclass(frozen=True)
class LandingLimits:
    """What a delivered file may be: larger files and longer lines are quarantined unread
    (a 512 MiB file or a 1 MiB line is far beyond any real delivery, and bounds memory);
    a file changed within ``settle_s`` may still be being written in place, so it waits.
    """

    max_file_bytes: int = 512 * 1024 * 1024
    max_line_bytes: int = 1024 * 1024
    settle_s: float = 5.0
    origins: LimitOrigins = field(default_factory=LimitOrigins)

    def __post_init__(self) -> None:
        if self.max_file_bytes < 1 or self.max_line_bytes < 1 or not self.settle_s >= 0:
            raise SettingsError(f"landing limits must be positive: {self}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LandingLimits:
        return cls(
            max_file_bytes=read(MAX_FILE_BYTES_ENV, env),
            max_line_bytes=read(MAX_LINE_BYTES_ENV, env),
            settle_s=read(LANDING_SETTLE_ENV, env),
        )


@dataclass(frozen=True)
class RowContractLimits:
    """How far a delivered timestamp may lie past its ingestion time (clocks drift, zones
    get mislabelled by hours, never by years), and the share of a batch's rows that may
    be rejected before the batch blocks everything downstream of it."""

    future_tolerance_hours: float = 24.0
    max_rejected_share: float = 0.05

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RowContractLimits:
        return cls(
            future_tolerance_hours=read(FUTURE_TOLERANCE_ENV, env),
            max_rejected_share=read(MAX_REJECTED_SHARE_ENV, env),
        )
