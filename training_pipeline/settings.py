"""Where the pipeline's data lives and what it may use, decided once.

Every path comes from here, so the assets, dbt (through its profile), the CLI and the
demo generator agree without passing paths around.  One environment variable,
``TRAINING_PIPELINE_DATA_DIR``, moves everything (tests point it at a temporary
directory).  How each source is reached is its declaration's business: a URL variable
it names (``source_declarations.py``), a landing folder under ``<data>/landing/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from training_pipeline.automation.policy import RetrainingPolicy

# Every variable is declared, parsed and checked in `environment`; the names below are
# imported from here too, where they always lived.
from training_pipeline.environment import (  # noqa: F401
    DATA_DIR_ENV,
    DEFAULT_DUCKDB_MEMORY_LIMIT,
    DEFAULT_DUCKDB_THREADS,
    DEFAULT_UI_URL,
    DUCKLAKE_CATALOG_ENV,
    DUCKLAKE_DATA_PATH_ENV,
    DUCKLAKE_WRITERS_ENV,
    LANDING_SETTLE_ENV,
    MEMORY_LIMIT_ENV,
    OPTUNA_STORAGE_ENV,
    PROJECT_DIR_ENV,
    REGISTRY_URL_ENV,
    S3_ENDPOINT_URL_ENV,
    THREADS_ENV,
    TUNING_WORKERS_ENV,
    UI_URL_ENV,
    WEBHOOK_URL_ENV,
    SettingsError,
    publish,
    read,
    value_of,
)
from training_pipeline.execution import ExecutionSettings
from training_pipeline.ingestion.lake import DuckLake, S3Access
from training_pipeline.limits import DuckDBLimits, LandingLimits, RowContractLimits

REPO_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
# The deployment's models and sources: a folder whose defs/ holds YAML only, and whose
# dbt/ is a dbt project of its models (SQL + YAML) using dbt_project/'s macros.
DEFAULT_PROJECT_DIR = REPO_ROOT / "examples"
PROJECT_DBT_MODELS = Path("dbt") / "models"
# Where a project folder's dbt manifest is parsed to (`training-pipeline dbt-parse`).
PROJECT_DBT_TARGET = Path("dbt") / "target"

DUCKDB_TEMP_DIR_NAME = "duckdb_tmp"  # inside the data directory, beside the warehouse


@dataclass(frozen=True)
class Settings:
    """Resolved locations of the warehouse, the landing folders and the model store.

    Everything the pipeline keeps is inside ``data_dir``: ``from_env`` refuses a derived
    path that resolves elsewhere (e.g. through a symlink), and the warehouse connections
    cannot open files outside it (``ingestion/warehouse.py``).  Declared source URLs and
    an explicitly set ``TRAINING_PIPELINE_OPTUNA_STORAGE`` (``optuna_storage``) are the
    exceptions: they name other systems on purpose.  ``webhook_url`` is where alerts are
    posted (None: the alert log only); ``ui_url`` is the Dagster UI their links open.
    ``execution`` is where a run's steps execute; ``tuning_workers`` how many processes
    share one tuning's trials (README "Scaling out").  ``registry_url``, when set, puts
    the model registry on S3 instead of ``models_dir`` (another system on purpose, like
    the DuckLake's data path), reached with ``registry_s3``.
    """

    data_dir: Path
    duckdb: DuckDBLimits = field(default_factory=DuckDBLimits)
    landing: LandingLimits = field(default_factory=LandingLimits)
    project_dir: Path = DEFAULT_PROJECT_DIR
    policy: RetrainingPolicy = field(default_factory=RetrainingPolicy)
    row_contract: RowContractLimits = field(default_factory=RowContractLimits)
    optuna_storage: str | None = None
    webhook_url: str | None = None
    ui_url: str = DEFAULT_UI_URL
    lake: DuckLake | None = None  # None: the warehouse is the DuckDB file
    execution: ExecutionSettings = field(default_factory=ExecutionSettings)
    tuning_workers: int = 1
    registry_url: str | None = None  # s3://bucket/prefix; None: the folder models_dir
    registry_s3: S3Access | None = None  # how the registry's bucket is reached

    @classmethod
    def from_env(cls) -> Settings:
        """Every setting, read once: the definitions and the CLI call this, nothing else."""
        data_dir = read(DATA_DIR_ENV) or REPO_ROOT / "data"
        data_dir = data_dir.expanduser().resolve()
        registry_url = read(REGISTRY_URL_ENV)
        settings = cls(
            data_dir=data_dir,
            duckdb=DuckDBLimits.from_env(),
            landing=LandingLimits.from_env(),
            project_dir=(read(PROJECT_DIR_ENV) or DEFAULT_PROJECT_DIR).resolve(),
            policy=RetrainingPolicy.from_env(),
            row_contract=RowContractLimits.from_env(),
            optuna_storage=read(OPTUNA_STORAGE_ENV),
            webhook_url=read(WEBHOOK_URL_ENV),
            ui_url=read(UI_URL_ENV),
            lake=_lake_from_env(data_dir),
            execution=ExecutionSettings.from_env(),
            tuning_workers=read(TUNING_WORKERS_ENV),
            registry_url=registry_url,
            registry_s3=s3_access_from_env() if registry_url else None,
        )
        settings.check_contained()
        settings.check_tuning_storage()
        # Child processes inherit the resolved paths: dbt runs in the project's dbt/ and
        # `dagster dev` in the repo root, so a relative one would name another folder.
        publish(DATA_DIR_ENV, str(data_dir))
        publish(PROJECT_DIR_ENV, str(settings.project_dir))
        return settings

    def check_tuning_storage(self) -> None:
        """Refuse several tuning workers on a SQLite study: its writers lock each other
        out, so the workers would fail or wait rather than share the trials."""
        if self.tuning_workers > 1 and self.optuna_storage_url.startswith("sqlite"):
            raise SettingsError(
                f"{TUNING_WORKERS_ENV}={self.tuning_workers} needs a study storage that "
                "takes concurrent writers: set TRAINING_PIPELINE_OPTUNA_STORAGE to a "
                "PostgreSQL URL (postgresql+psycopg2://user@host/db)"
            )

    def owned_paths(self) -> dict[str, Path]:
        """Every file or folder the pipeline itself reads or writes, by what it is."""
        return {
            "warehouse": self.warehouse_path,
            "DuckDB temp directory": self.duckdb_temp_dir,
            "landing folder": self.data_dir / "landing",
            "quarantine folder": self.data_dir / "quarantine",
            "S3 landing staging folder": self.data_dir / "s3-staging",
            "model registry": self.models_dir,
            "training-set exports": self.datasets_dir,
            "reports": self.reports_dir,
            "alert log": self.data_dir / "alerts",
            "prediction logs": self.prediction_logs_dir,
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
    def dbt_models_dir(self) -> Path:
        """The project folder's dbt models (dbt_project.yml's ``model-paths``)."""
        return self.project_dir / PROJECT_DBT_MODELS

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def warehouse_writers(self) -> int:
        """How many steps may write the warehouse at once: the ``warehouse`` pool's limit."""
        return self.lake.writers if self.lake else 1

    @property
    def duckdb_temp_dir(self) -> Path:
        """Where DuckDB spills what does not fit in its memory limit."""
        return self.data_dir / DUCKDB_TEMP_DIR_NAME

    @property
    def dbt_state_dir(self) -> Path:
        """dbt's target and log folder for this warehouse: its partial-parse file stays
        valid across runs because the profile it was parsed with names this warehouse."""
        return self.data_dir / "dbt"

    def landing_dir_of(self, folder: str) -> Path:
        """Where a files source's deliveries land (its ``landing`` folder name)."""
        return self.data_dir / "landing" / folder

    def quarantine_dir_of(self, folder: str) -> Path:
        """Where a files source's refused deliveries go, with their reasons."""
        return self.data_dir / "quarantine" / folder

    def staging_dir_of(self, folder: str) -> Path:
        """Where a files source's objects from an S3 landing prefix are downloaded to be
        read (one folder per batch, removed when the batch ends)."""
        return self.data_dir / "s3-staging" / folder

    @property
    def models_dir(self) -> Path:
        """The local model registry: versions, their reports and the production alias."""
        return self.data_dir / "models"

    @property
    def registry_root(self) -> Path | str:
        """Where each model's registry is: ``<root>/<model>`` (a folder or on S3)."""
        return self.registry_url or self.models_dir

    @property
    def prediction_logs_dir(self) -> Path:
        """What the online server predicted, until ingested (serving/prediction_log.py)."""
        return self.data_dir / "serving" / "predictions"

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

        The default is inside the data directory.  ``optuna_storage``
        (``TRAINING_PIPELINE_OPTUNA_STORAGE``) may name any Optuna storage, a SQLite file
        elsewhere included, because setting it is an explicit choice of another store
        (like a declared source's URL), not a path derived from the data directory; like
        such a URL it may hold a password.
        """
        return self.optuna_storage or f"sqlite:///{self.data_dir / 'optuna.db'}"

    @property
    def demo_dir(self) -> Path:
        """Where the demo source systems keep their own state (not the pipeline's)."""
        return self.data_dir / "demo"


def s3_access_from_env() -> S3Access:
    """The standard AWS variables (as boto3 and s3fs read them) and the S3 endpoint."""
    key_id, secret = value_of("AWS_ACCESS_KEY_ID"), value_of("AWS_SECRET_ACCESS_KEY")
    if not key_id or not secret:
        raise SettingsError(
            "an s3:// location is configured but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "are not both set"
        )
    region = value_of("AWS_REGION") or value_of("AWS_DEFAULT_REGION") or "us-east-1"
    return S3Access(key_id, secret, region, read(S3_ENDPOINT_URL_ENV))


def _lake_from_env(data_dir: Path) -> DuckLake | None:
    """The DuckLake warehouse when ``TRAINING_PIPELINE_DUCKLAKE_CATALOG`` is set."""
    catalog = read(DUCKLAKE_CATALOG_ENV)
    if catalog is None:
        return None
    data_path = read(DUCKLAKE_DATA_PATH_ENV) or str(data_dir / "lake")
    s3 = s3_access_from_env() if data_path.startswith("s3://") else None
    return DuckLake(catalog, data_path, read(DUCKLAKE_WRITERS_ENV), s3)
