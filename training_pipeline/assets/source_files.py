"""A declared ``files`` source's raw asset, its checks and its resource.

The asset takes every new, settled delivery of the source's landing folder
(``<data>/landing/<landing>/``) into ``raw.<name>`` through the landing engine
(``ingestion/landing_ingest.py``); a file it cannot load goes to
``<data>/quarantine/<landing>/`` with its reason.  Beside the ``rows_rejected`` check
every source has, a files source carries two more: ``no_quarantined_files`` (WARN) and
``rows_reconcile`` (landed = loaded + rejected + quarantined, per file, for this source).
"""

import dagster as dg

from training_pipeline.assets.rejections import rows_rejected_check, rows_rejected_spec
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.ingestion.landing_ingest import ingest_landing_folder
from training_pipeline.ingestion.manifest import LandingReport
from training_pipeline.ingestion.reconciliation import Reconciliation, reconcile_files
from training_pipeline.resources import WAREHOUSE_POOL, FilesSourceResource
from training_pipeline.settings import Settings
from training_pipeline.spec.sources import FilesSource, SourceSystem

GROUP = "ingestion"
PROVENANCE = (
    ("_source", "varchar", "ledger id of the source"),
    ("_source_ref", "varchar", "the delivered file"),
    ("_batch_id", "varchar", "ingestion batch"),
    ("_ingested_at", "timestamp", "batch time, UTC"),
)


def files_source_resource(source: FilesSource, settings: Settings) -> FilesSourceResource:
    """The source's folders and limits; a limit it does not declare is the project's."""
    declared, project = source.limits, settings.landing
    return FilesSourceResource(
        data_dir=str(settings.data_dir),
        landing_dir=str(settings.landing_dir_of(source.landing_folder)),
        quarantine_dir=str(settings.quarantine_dir_of(source.landing_folder)),
        max_file_bytes=declared.max_file_bytes or project.max_file_bytes,
        max_line_bytes=declared.max_line_bytes or project.max_line_bytes,
        settle_s=project.settle_s if declared.settle_s is None else declared.settle_s,
    )


def column_schema(source: FilesSource) -> dg.TableSchema:
    """The declared columns, kept as delivered text, then the provenance columns."""
    columns = [
        dg.TableColumn(name, "varchar", description=column.description)
        for name, column in source.contract.columns.items()
    ]
    columns += [dg.TableColumn(n, t, description=d) for n, t, d in PROVENANCE]
    return dg.TableSchema(columns=columns)


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
        rows_rejected_spec(key),
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
    system: SourceSystem, source: FilesSource, settings: Settings
) -> dg.Definitions:
    """The source's ``raw/<name>`` asset with its three checks, and its resource."""
    return dg.Definitions(
        assets=[files_source_asset(system, source)],
        resources={resource_key(source): files_source_resource(source, settings)},
    )


def resource_key(source: FilesSource) -> str:
    # Imported here: assets/sources.py imports this module to register the factory.
    from training_pipeline.assets.sources import source_resource_key

    return source_resource_key(source)


def files_source_asset(system: SourceSystem, source: FilesSource) -> dg.AssetsDefinition:
    """The ``raw/<name>`` asset; it reads its folders from resource ``source__<name>``."""
    files_key = resource_key(source)
    key = dg.AssetKey(list(source.asset_key_path))

    @dg.asset(
        key=key,
        group_name=GROUP,
        owners=[system.owner] if system.owner else None,
        kinds={"duckdb", "file"},
        pool=WAREHOUSE_POOL,
        description=source.description or f"Files of {system.system} landing in {source.name}.",
        metadata={"dagster/column_schema": column_schema(source), "source_system": system.system},
        check_specs=_check_specs(key, source),
        required_resource_keys={"warehouse", files_key, "row_contract", "alerts"},
    )
    def _raw_files(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        resources = context.resources
        files: FilesSourceResource = getattr(resources, files_key)
        landing_dir, quarantine_dir = files.folders()
        contract_limits = resources.row_contract.limits()
        batch_id = wh.new_batch_id(source.ledger)
        started_at = wh.utc_now()
        with resources.warehouse.connect() as con:
            wh.ensure_raw_layer(con)
            report = ingest_landing_folder(
                con,
                source,
                landing_dir,
                quarantine_dir,
                batch_id,
                started_at,
                files.limits(),
                contract_limits=contract_limits,
            )
            loaded = report.with_status("loaded")
            wh.record_batch(
                con,
                batch_id=batch_id,
                source=source.ledger,
                started_at=started_at,
                rows_loaded=report.rows_loaded,
                refs=[o.path for o in loaded],
                run_id=context.run.run_id,
                rows_rejected=report.rows_rejected,
            )
            ledger = reconcile_files(con, source)
            rows_in_batch = sum(o.rows_landed or 0 for o in loaded)
            rejected_check = rows_rejected_check(
                context, con, key, batch_id, rows_in_batch, contract_limits, resources.alerts
            )
            total = wh.table_row_count(con, wh.RAW_SCHEMA, source.name) or 0
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
            metadata={
                "dagster/row_count": total,
                "dagster/column_schema": column_schema(source),
                "batch_id": batch_id,
                **_report_metadata(report),
            },
            check_results=[quarantine_result, _reconcile_result(report, ledger), rejected_check],
        )

    return _raw_files
