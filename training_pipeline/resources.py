"""Dagster resources: thin, typed handles on the warehouse and the sources.

Each declared files source brings its own ``FilesSourceResource`` (``assets/source_files.py``)."""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource
from packaging import version

from training_pipeline.alerts import (
    Alert,
    AlertDestination,
    DeliveryOutcome,
    alert_log_path,
    deliver,
    deliver_once,
)
from training_pipeline.environment import (
    DUCKLAKE_CATALOG_ENV,
    LANDING_SETTLE_ENV,
    MAX_FILE_BYTES_ENV,
    MAX_LINE_BYTES_ENV,
    OPTUNA_STORAGE_ENV,
    WEBHOOK_URL_ENV,
)
from training_pipeline.ingestion import warehouse
from training_pipeline.ingestion.lake import DuckLake, S3Access
from training_pipeline.limits import DuckDBLimits, LandingLimits, LimitOrigins, RowContractLimits
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.project import dbt_executable, dbt_project_of, seed_partial_parse
from training_pipeline.registries import open_registry
from training_pipeline.resource_keys import S3KeysResource, secret_or_name
from training_pipeline.s3_filesystem import s3_filesystem
from training_pipeline.settings import Settings

WAREHOUSE_POOL = "warehouse"
"""Every step that opens the warehouse runs in this pool; its limit is set before any run
(``runner.limit_pools``): 1 for the DuckDB file, which one process at a time may hold,
``Settings.warehouse_writers`` for a DuckLake."""

DBT_POOL = "dbt"
"""dbt's builds on a DuckLake take turns among themselves (limit 1) while ingestion runs
beside them: two builds would replace the same tables and share one target folder."""


TRAINING_POOL = "training"
"""Tuning joins this pool (limit 1 too), so two trainings never run at once."""


class WarehouseResource(S3KeysResource):
    """The DuckDB warehouse file, or a DuckLake when ``lake_catalog`` is set (its URL
    and the S3 keys are handed on as their variables' names), and what a connection to
    it may use."""

    path: str
    memory_limit: str
    threads: int
    lake_catalog: str | None = None
    lake_data_path: str | None = None

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        limits = DuckDBLimits(memory_limit=self.memory_limit, threads=self.threads)
        with warehouse.connect(
            Path(self.path), read_only=read_only, limits=limits, lake=self.lake()
        ) as con:
            yield con

    def lake(self) -> DuckLake | None:
        if self.lake_catalog is None or self.lake_data_path is None:
            return None
        return DuckLake(self.lake_catalog, self.lake_data_path, s3=self.s3_access())

    @classmethod
    def of(cls, settings: Settings) -> WarehouseResource:
        lake, s3 = settings.lake, settings.lake.s3 if settings.lake else None
        return cls(
            path=str(settings.warehouse_path),
            memory_limit=settings.duckdb.memory_limit,
            threads=settings.duckdb.threads,
            lake_catalog=secret_or_name(DUCKLAKE_CATALOG_ENV, lake.catalog) if lake else None,
            lake_data_path=lake.data_path if lake else None,
            **cls.key_fields(s3),
        )


class FilesSourceResource(S3KeysResource):
    """A files source's landing folder, where its unreadable files go, and the limits a
    file must keep (``settings.LandingLimits``), each with where it was set; one per
    declared files source."""

    data_dir: str
    landing_dir: str
    quarantine_dir: str
    max_file_bytes: int
    max_line_bytes: int
    settle_s: float
    max_file_bytes_from: str = MAX_FILE_BYTES_ENV
    max_line_bytes_from: str = MAX_LINE_BYTES_ENV
    settle_s_from: str = LANDING_SETTLE_ENV
    # An S3 landing prefix instead of ``landing_dir``: its objects are downloaded into
    # ``staging_dir`` to be read, with the keys of ``S3KeysResource``.
    landing_url: str | None = None
    staging_dir: str | None = None

    @classmethod
    def s3_fields(cls, landing_url: str, staging_dir: Path, access: S3Access) -> dict[str, Any]:
        """The fields of an S3 landing prefix, the keys as their variables' names."""
        return {
            "landing_url": landing_url,
            "staging_dir": str(staging_dir),
            **cls.key_fields(access),
        }

    def s3(self) -> Any:
        """The s3fs filesystem of the landing prefix (``s3_filesystem.py``)."""
        access = self.s3_access()
        if self.landing_url is None or access is None:
            raise ValueError(
                f"the landing prefix {self.landing_url} needs AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, and one of them is not set"
            )
        return s3_filesystem(access)

    def limits(self) -> LandingLimits:
        origins = LimitOrigins(
            self.max_file_bytes_from, self.max_line_bytes_from, self.settle_s_from
        )
        return LandingLimits(self.max_file_bytes, self.max_line_bytes, self.settle_s, origins)

    def folders(self) -> tuple[Path, Path]:
        """The landing and quarantine folders, refused when one resolves outside the data
        directory (a folder replaced by a link): the warehouse could not read from it, and
        good files would be quarantined as unreadable."""
        data_dir = Path(self.data_dir).resolve()
        owned = [("landing", self.landing_dir), ("quarantine", self.quarantine_dir)]
        if self.staging_dir is not None:
            owned.append(("staging", self.staging_dir))
        for what, folder in owned:
            if not Path(folder).resolve().is_relative_to(data_dir):
                raise ValueError(
                    f"the {what} folder {folder} resolves to {Path(folder).resolve()}, outside "
                    f"the data directory {data_dir}; make it a real folder inside it"
                )
        return Path(self.landing_dir), Path(self.quarantine_dir)


class SqlSourceResource(dg.ConfigurableResource):
    """A database a ``sql_table`` source reads; the URL may hold a password, so it is
    handed on as the environment variable's name (``dg.EnvVar``) whenever that is set."""

    url: str


class ModelStoreResource(S3KeysResource):
    """Where models, training-set exports and tuning studies are kept, and how many
    processes share one tuning's trials (more than 1: the study is on PostgreSQL)."""

    models_dir: str  # the local registry folder
    datasets_dir: str
    reports_dir: str
    optuna_storage_url: str
    prediction_logs_dir: str  # the online server's prediction log, until ingested
    tuning_workers: int = 1
    registry_url: str | None = None  # s3://bucket/prefix: the registry is there, not models_dir

    def registry_of(self, name: str) -> ModelRegistry:
        """Model ``name``'s registry: on S3 when ``registry_url`` is set."""
        return open_registry(self.registry_url or self.models_dir, name, self.s3_access())


class RowContractResource(dg.ConfigurableResource):
    """What every source's rows must keep (``settings.RowContractLimits``)."""

    future_tolerance_hours: float
    max_rejected_share: float

    def limits(self) -> RowContractLimits:
        return RowContractLimits(self.future_tolerance_hours, self.max_rejected_share)


class AlertsResource(dg.ConfigurableResource):
    """Where the alerts a step raises itself go (``alerts.AlertDestination``)."""

    log_path: str
    webhook_url: str | None
    ui_url: str

    def deliver(self, alert: Alert) -> DeliveryOutcome:
        return deliver(alert, self.destination)

    def deliver_once(self, alert: Alert) -> DeliveryOutcome | None:
        """Deliver unless the alert's episode (its ``dedup_key``) was alerted already."""
        return deliver_once(alert, self.destination)

    @property
    def destination(self) -> AlertDestination:
        return AlertDestination(Path(self.log_path), self.webhook_url, self.ui_url)


class WarehouseDbtResource(DbtCliResource):
    """dbt on this warehouse, with one target folder per data directory.

    dagster-dbt gives every invocation a fresh target folder, so dbt would never find
    the partial-parse file of the previous run and re-parse the whole project each time.
    Here every invocation on the same warehouse shares ``state_dir``: the profile (which
    names the warehouse) is the same each time, so dbt's partial parsing holds across
    runs.  Invocations never overlap: dbt runs only in steps of the warehouse pool (the
    DuckDB file) or of the dbt pool (a DuckLake), each of limit 1.
    """

    state_dir: str

    def cli(self, args: Sequence[str], *, target_path: Path | None = None, **kwargs):  # type: ignore[override]
        target = target_path or Path(self.state_dir)
        # A new warehouse starts from the parse `make install` made (dbt checks it).
        seed_partial_parse(Path(self.project_dir), target)
        return super().cli(args, target_path=target, **kwargs)

    # Two start-up costs dagster-dbt pays on every run before dbt starts (measured: about
    # 5 s of CPU, half a minute of wall time on a busy 2-core machine), for nothing here:

    @cached_property
    def _cli_version(self) -> version.Version:
        """dagster-dbt runs ``dbt --version`` (a whole dbt start-up) to learn this; the
        executable is this environment's own, so its version is the installed package's."""
        if self.dbt_executable != str(Path(sys.executable).parent / "dbt"):
            return super()._cli_version
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:  # type: ignore[override]
        """dagster-dbt loads dbt in-process only to fetch column metadata and row counts
        through it; column metadata comes from dbt's post-hook here, row counts are unused."""
        return None


def _registry_access(settings: Settings) -> dict[str, object]:
    """The model store's S3 fields when the registry is on S3 (none otherwise)."""
    if settings.registry_url is None or settings.registry_s3 is None:
        return {}
    return {
        "registry_url": settings.registry_url,
        **S3KeysResource.key_fields(settings.registry_s3),
    }


class RawTablesResource(dg.ConfigurableResource):
    """Every declared source's raw table and its columns.

    dbt reads each one through its sources, so each must exist before the first build,
    even for a source that has delivered nothing yet (its raw asset creates it too).
    """

    tables: dict[str, list[str]]

    def ensure(self, con: duckdb.DuckDBPyConnection) -> None:
        warehouse.ensure_raw_layer(con)
        for table, columns in self.tables.items():
            warehouse.ensure_raw_table(con, table, columns)


def build_resources(
    settings: Settings, raw_tables: Mapping[str, Sequence[str]] | None = None
) -> dict[str, object]:
    """The pipeline's resources; ``raw_tables``: each declared source's table and columns."""
    return {
        # The DuckDB file (or the DuckLake) every stage reads and writes.
        "warehouse": WarehouseResource.of(settings),
        # The declared sources' raw tables, created before dbt reads them.
        "raw_tables": RawTablesResource(
            tables={table: list(columns) for table, columns in (raw_tables or {}).items()}
        ),
        # The model registry, training-set exports and Optuna studies.
        "model_store": ModelStoreResource(
            models_dir=str(settings.models_dir),
            datasets_dir=str(settings.datasets_dir),
            reports_dir=str(settings.reports_dir),
            optuna_storage_url=secret_or_name(OPTUNA_STORAGE_ENV, settings.optuna_storage_url),
            prediction_logs_dir=str(settings.prediction_logs_dir),
            tuning_workers=settings.tuning_workers,
            **_registry_access(settings),
        ),
        # The row contract every source's rows are held to.
        "row_contract": RowContractResource(
            future_tolerance_hours=settings.row_contract.future_tolerance_hours,
            max_rejected_share=settings.row_contract.max_rejected_share,
        ),
        # Where the alerts a step raises itself go (the run-failure sensor takes settings).
        "alerts": AlertsResource(
            log_path=str(alert_log_path(settings)),
            webhook_url=secret_or_name(WEBHOOK_URL_ENV, settings.webhook_url)
            if settings.webhook_url
            else None,
            ui_url=settings.ui_url,
        ),
        # dbt, which opens the warehouse itself through profiles.yml.
        "dbt": WarehouseDbtResource(
            project_dir=dbt_project_of(settings),
            dbt_executable=dbt_executable(),
            state_dir=str(settings.dbt_state_dir),
        ),
    }
