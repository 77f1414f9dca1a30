"""The ``rows_rejected`` check every raw asset carries, and the alert it raises.

Rows that broke their source's row contract are in ``raw.rejected_rows`` (the valid rows
of their batch loaded).  Any rejection fails the check as a WARN and sends a
``rows_rejected`` alert (the alert log always, the webhook when configured).  Above
``TRAINING_PIPELINE_MAX_REJECTED_SHARE`` of the batch the check fails as a blocking
ERROR: the assets downstream wait for this run, and the run-failure sensor raises the
``blocking_check_failed`` alert instead.  The batch's rows are loaded either way, so the
next batch is judged on its own and nothing stays blocked.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import duckdb

from training_pipeline.alerts import Alert, clip
from training_pipeline.ingestion.rejection_summary import Verdict, batch_rejections
from training_pipeline.resources import AlertsResource
from training_pipeline.settings import RowContractLimits

CHECK_NAME = "rows_rejected"


def rows_rejected_spec(asset_key: dg.AssetKey) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        CHECK_NAME,
        asset=asset_key,
        blocking=True,
        description="Rows that broke the source's row contract went to raw.rejected_rows: "
        "WARN for any, blocking ERROR above TRAINING_PIPELINE_MAX_REJECTED_SHARE of the batch.",
    )


def rows_rejected_check(
    context: dg.AssetExecutionContext,
    con: duckdb.DuckDBPyConnection,
    asset_key: dg.AssetKey,
    batch_id: str,
    rows_in_batch: int,
    limits: RowContractLimits,
    alerts: AlertsResource,
) -> dg.AssetCheckResult:
    """Judge this batch's rejections; alert on a warning (a block alerts through the
    run-failure sensor)."""
    rejections = batch_rejections(con, batch_id)
    verdict = Verdict(rows_in_batch, rejections.rows_rejected, limits.max_rejected_share)
    if not verdict.passed:
        context.log.warning(f"{asset_key.to_user_string()}: {verdict.summary()}")
        if not verdict.blocks:
            _alert(context, asset_key, verdict, rejections.examples, alerts)
    return dg.AssetCheckResult(
        check_name=CHECK_NAME,
        asset_key=asset_key,
        passed=verdict.passed,
        severity=dg.AssetCheckSeverity.ERROR if verdict.blocks else dg.AssetCheckSeverity.WARN,
        description=verdict.summary(),
        metadata={
            "batch_id": batch_id,
            "rows_in_batch": rows_in_batch,
            "rows_rejected": verdict.rows_rejected,
            "share_rejected": round(verdict.share, 4),
            "max_share": verdict.max_share,
            "by_rule": rejections.by_rule,
            "first_rejected": dg.MetadataValue.json(_jsonable(rejections.examples)),
            "ledger": "raw.rejected_rows",
        },
    )


def _jsonable(examples: list[dict[str, object]]) -> list[dict[str, object]]:
    return [
        {k: v if isinstance(v, int) else clip(str(v), 200) for k, v in example.items()}
        for example in examples
    ]


def _alert(
    context: dg.AssetExecutionContext,
    asset_key: dg.AssetKey,
    verdict: Verdict,
    examples: list[dict[str, object]],
    alerts: AlertsResource,
) -> None:
    first = examples[0] if examples else {}
    alert = Alert(
        kind="rows_rejected",
        job_name=context.run.job_name,
        run_id=context.run.run_id,
        message=f"`{asset_key.to_user_string()}`: {verdict.summary()}; the rest of the batch "
        "loaded. See raw.rejected_rows.",
        timestamp=datetime.now(UTC),
        error_summary=clip(
            f"first: {first.get('source_ref')} record {first.get('record_number')}: "
            f"{first.get('detail')}"
        )
        if first
        else "",
        asset_key=asset_key.to_user_string(),
        check_name=CHECK_NAME,
    )
    outcome = alerts.deliver(alert)
    if outcome.error:
        context.log.warning(outcome.error)
