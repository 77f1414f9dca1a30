"""A declared ``files`` source's raw asset, its checks and its resource.

The asset takes every new, settled delivery of the source's landing folder
(``<data>/landing/<landing>/``) into ``raw.<name>`` through the landing engine
(``ingestion/landing_ingest.py``); a file it cannot load goes to
``<data>/quarantine/<landing>/`` with its reason.  Beside the ``rows_rejected`` check
every source has, a files source carries two more: ``no_quarantined_files`` (WARN) and
``rows_reconcile`` (landed = loaded + rejected + quarantined, per file, for this source).
"""

from pathlib import Path

import dagster as dg
import duckdb

from training_pipeline.assets.source_common import (
    RESOURCE_PREFIX,
    Batch,
    close_batch,
    column_schema,
    judge_batch,
    new_batch,
    raw_asset_key,
    raw_asset_spec,
    source_resource_key,
)
from training_pipeline.environment import SettingsError
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.ingestion.landing_ingest import ingest_landing_folder
from training_pipeline.ingestion.landing_s3 import ingest_s3_landing
from training_pipeline.ingestion.manifest import LandingReport
from training_pipeline.ingestion.reconciliation import Reconciliation, reconcile_files
from training_pipeline.resources import FilesSourceResource
from training_pipeline.settings import RowContractLimits, Settings, s3_access_from_env
from training_pipeline.spec.errors import FieldError
from training_pipeline.spec.sources import FilesSource, SourceSystem


def files_source_resource(
    source: FilesSource, settings: Settings, declared_in: Path | None = None
) -> FilesSourceResource:
    """The source's folders and limits; a limit it does not declare is the project's.
    Each limit says where it was set: the declaration's field (in ``declared_in``) or
    the project's variable.  A folder that resolves outside the data directory (a link)
    is refused here, when the definitions load, and again before each run
    (``FilesSourceResource.folders``)."""
    declared, project = source.limits, settings.landing
    where = f" in {declared_in}" if declared_in is not None else ""

    def origin(limit: str, value: object, variable: str) -> str:
        return variable if value is None else f"limits.{limit} of source {source.name!r}{where}"

    for what, folder in (
        ("landing", settings.landing_dir_of(source.landing_folder)),
        ("quarantine", settings.quarantine_dir_of(source.landing_folder)),
    ):
        if not folder.resolve().is_relative_to(settings.data_dir):
            raise FieldError(
                "landing",
                f"the {what} folder {folder} resolves to {folder.resolve()}, outside the data "
                f"directory {settings.data_dir} (TRAINING_PIPELINE_DATA_DIR); the pipeline "
                "reads and writes nothing outside it, so make that a real folder inside it",
            )
    s3_fields = {}
    if source.landing_url is not None:
        try:
            access = s3_access_from_env()
        except SettingsError as error:
            raise FieldError("landing", f"{source.landing_url}: {error}") from error
        staging = settings.staging_dir_of(source.landing_folder)
        s3_fields = FilesSourceResource.s3_fields(source.landing_url, staging, access)
    return FilesSourceResource(
        **s3_fields,
        data_dir=str(settings.data_dir),
        landing_dir=str(settings.landing_dir_of(source.landing_folder)),
        quarantine_dir=str(settings.quarantine_dir_of(source.landing_folder)),
        max_file_bytes=declared.max_file_bytes or project.max_file_bytes,
        max_line_bytes=declared.max_line_bytes or project.max_line_bytes,
        settle_s=project.settle_s if declared.settle_s is None else declared.settle_s,
        max_file_bytes_from=origin(
            "max_file_bytes", declared.max_file_bytes, project.origins.max_file_bytes
        ),
        max_line_bytes_from=origin(
            "max_line_bytes", declared.max_line_bytes, project.origins.max_line_bytes
        ),
        settle_s_from=origin("settle_s", declared.settle_s, project.origins.settle_s),
    )


def files_sources_of(defs: dg.Definitions) -> dict[str, FilesSourceResource]:
    """Each declared files source's resource (folders, limits), by source name."""
    return {
        key.removeprefix(RESOURCE_PREFIX): resource
        for key, resource in (defs.resources or {}).items()
        if key.startswith(RESOURCE_PREFIX) and isinstance(resource, FilesSourceResource)
    }


def batch_counts(report: LandingReport) -> dict[str, int]:
    """This run's ledger: files landed = loaded + quarantined, rows landed = loaded +
    rejected + quarantined; deferred files wait."""
    quarantined = report.with_status("quarantined") + report.recovered
    loaded = report.with_status("loaded")
    return {
        "files_landed": len(loaded) + len(quarantined),
        "files_loaded": len(loaded),
        "files_quarantined": len(quarantined),
        "files_deferred": len(report.with_status("deferred")),
        "files_skipped_as_identical": len(report.with_status("skipped")),
        "rows_landed": sum(o.rows_landed or 0 for o in loaded + quarantined),
        "rows_loaded": report.rows_loaded,
        "rows_rejected": report.rows_rejected,
        "rows_quarantined": sum(o.rows_landed or 0 for o in quarantined),
    }


def _check_specs(key: dg.AssetKey, source: FilesSource) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            "no_quarantined_files",
            asset=key,
            description="Fails (WARN, non-blocking) when this run quarantined a file.",
        ),
        dg.AssetCheckSpec(
            "rows_reconcile",
            asset=key,
            description=f"Rows landed = rows in {source.raw_table} + rows rejected + rows "
            "quarantined, per file.",
        ),
    ]


def _reconcile_result(report: LandingReport, ledger: Reconciliation) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name="rows_reconcile",
        passed=ledger.holds,
        metadata={
            "this_batch": batch_counts(report),
            "rows_landed": ledger.rows_landed,
            "rows_loaded": ledger.rows_loaded,
            "rows_rejected": ledger.rows_rejected,
            "rows_quarantined": ledger.rows_quarantined,
            "files_loaded": ledger.files_loaded,
            "files_quarantined": ledger.files_quarantined,
            "mismatched_deliveries": [list(m) for m in ledger.mismatched],
            "mismatched_rejections": [list(m) for m in ledger.mismatched_rejections],
        },
    )


def _report_metadata(report: LandingReport) -> dict:
    loaded = report.with_status("loaded")
    quarantined = report.with_status("quarantined") + report.recovered
    return {
        "rows_loaded_this_run": report.rows_loaded,
        "this_batch": batch_counts(report),
        "files_taken": [o.path for o in loaded],
        "files_skipped_as_identical": len(report.with_status("skipped")),
        "files_quarantined": {o.path: o.reason for o in quarantined},
        "files_deferred": {o.path: o.reason for o in report.with_status("deferred")},
        "entries_ignored": dict(report.ignored),
        "extra_columns_ignored": {o.path: list(o.extra_columns) for o in loaded if o.extra_columns},
        "non_text_columns_kept_as_text": {
            o.path: list(o.non_text_columns) for o in loaded if o.non_text_columns
        },
    }


def build_files_source(
    system: SourceSystem, source: FilesSource, settings: Settings, declared_in: Path
) -> dg.Definitions:
    """The source's ``raw/<name>`` asset with its three checks, and its resource."""
    resource = files_source_resource(source, settings, declared_in)
    return dg.Definitions(
        assets=[files_source_asset(system, source)],
        resources={source_resource_key(source): resource},
    )


def _ingest(
    con: duckdb.DuckDBPyConnection,
    source: FilesSource,
    files: FilesSourceResource,
    batch: Batch,
    contract_limits: RowContractLimits,
) -> LandingReport:
    """The local landing folder's engine, or the S3 prefix's (which stages each object
    and hands it to the local engine)."""
    landing_dir, quarantine_dir = files.folders()
    taken = (batch.batch_id, batch.started_at, files.limits())
    if files.landing_url is None:
        return ingest_landing_folder(
            con, source, landing_dir, quarantine_dir, *taken, contract_limits=contract_limits
        )
    staging_dir = Path(files.staging_dir or "")
    return ingest_s3_landing(
        con,
        source,
        files.s3(),
        files.landing_url,
        staging_dir,
        quarantine_dir,
        *taken,
        contract_limits=contract_limits,
    )


def files_source_asset(system: SourceSystem, source: FilesSource) -> dg.AssetsDefinition:
    """The ``raw/<name>`` asset; it reads its folders from resource ``source__<name>``."""
    files_key = source_resource_key(source)
    key = raw_asset_key(source)
    description = source.description or f"Files of {system.system} landing in {source.name}."

    @dg.asset(**raw_asset_spec(system, source, description, _check_specs(key, source)))
    def _raw_files(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        resources = context.resources
        files: FilesSourceResource = getattr(resources, files_key)
        _, quarantine_dir = files.folders()
        batch = new_batch(source)
        with resources.warehouse.connect() as con:
            wh.ensure_raw_layer(con)
            # Each file commits on its own (its rows, rejections and manifest entry).
            report = _ingest(con, source, files, batch, resources.row_contract.limits())
            loaded = report.with_status("loaded")
            close_batch(context, con, source, batch, report, [o.path for o in loaded])
            ledger = reconcile_files(con, source)
            closed = judge_batch(
                context, con, source, batch, sum(o.rows_landed or 0 for o in loaded)
            )
        quarantined = report.with_status("quarantined") + report.recovered
        for outcome in quarantined:
            context.log.warning(f"quarantined {outcome.path}: {outcome.reason}")
        for outcome in report.with_status("deferred"):
            context.log.info(f"deferred {outcome.path}: {outcome.reason}")
        quarantine_result = dg.AssetCheckResult(
            check_name="no_quarantined_files",
            passed=not quarantined,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "quarantined": [o.path for o in quarantined],
                "reasons": {o.path: o.reason for o in quarantined},
                "recorded_after_a_crash": [o.path for o in report.recovered],
                "quarantine_dir": str(quarantine_dir),
            },
        )
        return dg.MaterializeResult(
            data_version=closed.data_version,
            metadata={
                "dagster/row_count": closed.total_rows,
                "dagster/column_schema": column_schema(source),
                "batch_id": batch.batch_id,
                **_report_metadata(report),
            },
            check_results=[quarantine_result, _reconcile_result(report, ledger), closed.check],
        )

    return _raw_files
