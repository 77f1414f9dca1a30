"""Where the pipeline's data lives and how its sources are reached, decided once.

Every path and URL comes from here, so the assets, dbt (through its profile), the CLI
and the demo generator agree without passing paths around.  One environment variable,
``TRAINING_PIPELINE_DATA_DIR``, moves everything (tests point it at a temporary
directory); the source URLs can each be pointed at real systems.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"

DEFAULT_API_HOST = "127.0.0.1"
DEFAULT_API_PORT = 8765
DEFAULT_API_URL = f"http://{DEFAULT_API_HOST}:{DEFAULT_API_PORT}"


@dataclass(frozen=True)
class Settings:
    """Resolved locations of the warehouse, the landing folder and the three sources."""

    data_dir: Path
    crm_url: str
    api_url: str

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(os.environ.get("TRAINING_PIPELINE_DATA_DIR", REPO_ROOT / "data"))
        data_dir = data_dir.expanduser().resolve()
        return cls(
            data_dir=data_dir,
            crm_url=os.environ.get(
                "TRAINING_PIPELINE_CRM_URL", f"sqlite:///{data_dir / 'crm.sqlite'}"
            ),
            api_url=os.environ.get("TRAINING_PIPELINE_API_URL", DEFAULT_API_URL),
        )

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

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
        """Where tuning studies persist (optuna-dashboard opens it); override by env."""
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
