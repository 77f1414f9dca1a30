"""Before a step uses the production model it must verify; if not, production rolls back.

Validation, deployment and scoring each call ``verified_production`` first: a production
artifact that fails verification (``ml/recovery.py``) is rolled back from automatically,
the run goes on with the model restored, an alert of its own kind is delivered and the
step's metadata says what happened.  If nothing can be restored the step fails with
what to do, and the run-failure alert carries that message.  The check
``production_artifact_verifies`` shows the same verdict in the UI on demand.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from training_pipeline.alerts import Alert, clip
from training_pipeline.ml.recovery import (
    NoVerifiedModelError,
    ensure_verified_production,
    production_check,
)
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.resources import AlertsResource, ModelStoreResource

PRODUCTION = dg.AssetKey("production_model")


def verified_production(
    context: dg.AssetExecutionContext, registry: ModelRegistry, alerts: AlertsResource
) -> dict[str, str]:
    """Production verified or rolled back from; the metadata to record on the step.

    Raises:
        dg.Failure: production fails verification and nothing earlier verifies.
    """
    run = context.run
    try:
        fallback = ensure_verified_production(registry, actor=f"dagster run {run.run_id}")
    except NoVerifiedModelError as error:
        raise dg.Failure(description=str(error), metadata={"production_verified": False}) from None
    if fallback is None:
        return {}
    context.log.error(fallback.message)
    alert = Alert(
        kind="production_failed_verification",
        job_name=run.job_name,
        run_id=run.run_id,
        message=fallback.message,
        timestamp=datetime.now(UTC),
        error_summary=clip(fallback.reason),
        asset_key=context.asset_key.to_user_string(),
    )
    outcome = alerts.deliver(alert)
    if outcome.error:
        context.log.warning(outcome.error)
    return {"production_rolled_back": fallback.message}


@dg.asset_check(
    asset=PRODUCTION,
    name="production_artifact_verifies",
    description="The production model's artifact still hashes to what was registered and "
    "was written by the installed scikit-learn; when it does not, the next run rolls back "
    "to the last earlier production model that verifies.",
)
def production_artifact_verifies(model_store: ModelStoreResource) -> dg.AssetCheckResult:
    check = production_check(ModelRegistry(Path(model_store.models_dir)))
    return dg.AssetCheckResult(
        passed=check.verified is not False,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "production": check.version or "(none)",
            "verified": "no production model" if check.verified is None else check.verified,
            "reason": check.reason or "",
        },
    )
