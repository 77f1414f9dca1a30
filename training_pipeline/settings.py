"""Where the pipeline's data lives and how its sources are reached, decided once.

Every path and URL comes from here, so the assets, dbt (through its profile), the CLI
and the demo generator agree without passing paths around.  One environment variable,
``TRAINING_PIPELINE_DATA_DIR``, moves everything (tests point it at a temporary
directory); the source URLs can each be pointed at real systems.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"

DEFAULT_API_HOST = "127.0.0.1"
DEFAULT_API_PORT = 8765
DEFAULT_API_URL = f"http://{DEFAULT_API_HOST}:{DEFAULT_API_PORT}"

DATA_DIR_ENV = "TRAINING_PIPELINE_DATA_DIR"
DUCKDB_TEMP_DIR_NAME = "duckdb_tmp"  # inside the data directory, beside the warehouse
MEMORY_LIMIT_ENV = "TRAINING_PIPELINE_DUCKDB_MEMORY_LIMIT"
THREADS_ENV = "TRAINING_PIPELINE_DUCKDB_THREADS"
# 2 GB leaves an 8 GB laptop room for the Dagster webserver, daemon and code server and
# for scikit-learn tuning beside DuckDB (whose own default is 80% of RAM); the demo
# warehouse needs far less, and a bigger job spills to the temp directory instead of
# being killed.  dbt_project/profiles.yml repeats these defaults (a test pins that).
DEFAULT_DUCKDB_MEMORY_LIMIT = "2GB"
# Two threads match the 2-core machines this targets without starving the daemon.
DEFAULT_DUCKDB_THREADS = 2
# Below this DuckDB cannot even sort a couple of million short rows (measured: 16MB fails).
MIN_DUCKDB_MEMORY_BYTES = 64 * 1000**2
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]i?B)", re.IGNORECASE)
_UNIT_BYTES = {
    unit: base**power
    for power, letter in enumerate("KMGT", start=1)
    for unit, base in ((f"{letter}B", 1000), (f"{letter}IB", 1024))
}


class SettingsError(ValueError):
    """A configured value is unusable; the message names the variable and the value."""


def parse_memory_limit(text: str, variable: str = MEMORY_LIMIT_ENV) -> str:
    """A DuckDB memory size such as ``2GB`` or ``1536MiB``, checked before DuckDB sees it."""
    match = _MEMORY.fullmatch(text.strip())
    if match is None:
        raise SettingsError(
            f"{variable}={text!r} is not a memory size: use a number and a unit "
            "(KB, MB, GB, TB or KiB, MiB, GiB, TiB), e.g. 2GB"
        )
    number, unit = match.groups()
    if float(number) * _UNIT_BYTES[unit.upper()] < MIN_DUCKDB_MEMORY_BYTES:
        raise SettingsError(
            f"{variable}={text!r} is too small: DuckDB needs at least 64MB to run queries"
        )
    return f"{number}{unit}"


def parse_threads(text: str, variable: str = THREADS_ENV) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise SettingsError(f"{variable}={text!r} is not a whole number of threads >= 1")
    return int(text)


@dataclass(frozen=True)
class DuckDBLimits:
    """What every DuckDB connection to the warehouse may use (Python's and dbt's)."""

    memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT
    threads: int = DEFAULT_DUCKDB_THREADS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DuckDBLimits:
        env = os.environ if env is None else env
        return cls(
            memory_limit=parse_memory_limit(env.get(MEMORY_LIMIT_ENV, DEFAULT_DUCKDB_MEMORY_LIMIT)),
            threads=parse_threads(env.get(THREADS_ENV, str(DEFAULT_DUCKDB_THREADS))),
        )


MAX_FILE_BYTES_ENV = "TRAINING_PIPELINE_MAX_FILE_BYTES"
MAX_LINE_BYTES_ENV = "TRAINING_PIPELINE_MAX_LINE_BYTES"
LANDING_SETTLE_ENV = "TRAINING_PIPELINE_LANDING_SETTLE_S"


def _parse_landing_number(env: Mapping[str, str], variable: str, default: float) -> float:
    text = env.get(variable)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"{variable}={text!r} is not a number") from None
    if not value >= 0 or value == float("inf"):
        raise SettingsError(f"{variable}={text!r} must be a finite number >= 0")
    return value


@dataclass(frozen=True)
class LandingLimits:
    """What an order file may be: larger files and longer lines are quarantined unread
    (a 512 MiB file or a 1 MiB line is far beyond any real delivery, and bounds memory);
    a file changed within ``settle_s`` may still be being written in place, so it waits.
    """

    max_file_bytes: int = 512 * 1024 * 1024
    max_line_bytes: int = 1024 * 1024
    settle_s: float = 5.0

    def __post_init__(self) -> None:
        if self.max_file_bytes < 1 or self.max_line_bytes < 1 or not self.settle_s >= 0:
            raise SettingsError(f"landing limits must be positive: {self}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LandingLimits:
        env = os.environ if env is None else env
        defaults = cls()
        return cls(
            max_file_bytes=int(
                _parse_landing_number(env, MAX_FILE_BYTES_ENV, defaults.max_file_bytes)
            ),
            max_line_bytes=int(
                _parse_landing_number(env, MAX_LINE_BYTES_ENV, defaults.max_line_bytes)
            ),
            settle_s=_parse_landing_number(env, LANDING_SETTLE_ENV, defaults.settle_s),
        )


@dataclass(frozen=True)
class Settings:
    """Resolved locations of the warehouse, the landing folder and the three sources.

    Everything the pipeline keeps is inside ``data_dir``: ``from_env`` refuses a derived
    path that resolves elsewhere (e.g. through a symlink), and the warehouse connections
    cannot open files outside it (``ingestion/warehouse.py``).  The source URLs and an
    explicitly set ``TRAINING_PIPELINE_OPTUNA_STORAGE`` are the exceptions: they name
    other systems on purpose.
    """

    data_dir: Path
    crm_url: str
    api_url: str
    duckdb: DuckDBLimits = field(default_factory=DuckDBLimits)
    landing: LandingLimits = field(default_factory=LandingLimits)

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(os.environ.get(DATA_DIR_ENV, REPO_ROOT / "data"))
        data_dir = data_dir.expanduser().resolve()
        # Child processes inherit the resolved path: dbt runs in dbt_project/ and
        # `dagster dev` in the repo root, so a relative one would name another folder.
        os.environ[DATA_DIR_ENV] = str(data_dir)
        settings = cls(
            data_dir=data_dir,
            crm_url=os.environ.get(
                "TRAINING_PIPELINE_CRM_URL", f"sqlite:///{data_dir / 'crm.sqlite'}"
            ),
            api_url=os.environ.get("TRAINING_PIPELINE_API_URL", DEFAULT_API_URL),
            duckdb=DuckDBLimits.from_env(),
            landing=LandingLimits.from_env(),
        )
        settings.check_contained()
        return settings

    def owned_paths(self) -> dict[str, Path]:
        """Every file or folder the pipeline itself reads or writes, by what it is."""
        return {
            "warehouse": self.warehouse_path,
            "DuckDB temp directory": self.duckdb_temp_dir,
            "landing folder": self.landing_dir,
            "quarantine folder": self.quarantine_dir,
            "model registry": self.models_dir,
            "training-set exports": self.datasets_dir,
            "reports": self.reports_dir,
            "alert log": self.data_dir / "alerts",
            "demo state": self.demo_dir,
            "dbt state": self.dbt_state_dir,
        }

    def check_contained(self) -> None:
        """Refuse a path that resolves outside the data directory, before anything runs."""
        for what, path in self.owned_paths().items():
            resolved = path.resolve()
            if not resolved.is_relative_to(self.data_dir):
                raise SettingsError(
                    f"the {what} {path} resolves to {resolved}, outside the data directory "
                    f"{self.data_dir} (TRAINING_PIPELINE_DATA_DIR); the pipeline reads and "
                    "writes nothing outside it, so make that a real folder inside it"
                )

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def duckdb_temp_dir(self) -> Path:
        """Where DuckDB spills what does not fit in its memory limit."""
        return self.data_dir / DUCKDB_TEMP_DIR_NAME

    @property
    def dbt_state_dir(self) -> Path:
        """dbt's target and log folder for this warehouse: its partial-parse file stays
        valid across runs because the profile it was parsed with names this warehouse."""
        return self.data_dir / "dbt"

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing" / "orders"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine" / "orders"

    @property
    def models_dir(self) -> Path:
        """The model registry: versions, their reports and the production alias."""
        return self.data_dir / "models"

    @property
    def datasets_dir(self) -> Path:
        """Immutable training-set exports, named by content, that models were fit on."""
        return self.data_dir / "datasets"

    @property
    def reports_dir(self) -> Path:
        """Drift reports, one HTML file per check evaluation."""
        return self.data_dir / "reports"

    @property
    def optuna_storage_url(self) -> str:
        """Where tuning studies persist (optuna-dashboard opens it).

        The default is inside the data directory.  ``TRAINING_PIPELINE_OPTUNA_STORAGE``
        may name any Optuna storage, a SQLite file elsewhere included, because setting
        it is an explicit choice of another store (like the CRM URL), not a path derived
        from the data directory; like the CRM URL it may hold a password.
        """
        return os.environ.get(
            "TRAINING_PIPELINE_OPTUNA_STORAGE", f"sqlite:///{self.data_dir / 'optuna.db'}"
        )

    @property
    def demo_dir(self) -> Path:
        """Where the demo source systems keep their own state (not the pipeline's)."""
        return self.data_dir / "demo"

    @property
    def api_is_demo_default(self) -> bool:
        return self.api_url.rstrip("/") == DEFAULT_API_URL
