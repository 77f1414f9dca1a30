"""Before a step uses the production model it must verify; if not, production rolls back.

Validation, deployment and scoring each call ``verified_production`` first: a production
artifact that fails verification (``ml/recovery.py``) is rolled back from automatically,
the run goes on with the model restored, an alert of its own kind is delivered and the
step's metadata says what happened.  If nothing can be restored the step fails with
what to do, and the run-failure alert carries that message.  The check
``production_artifact_verifies`` of each model (assets/model_drift.py) shows the same
verdict in the UI on demand.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from training_pipeline.alerts import Alert, clip
from training_pipeline.ml.recovery import NoVerifiedModelError, ensure_verified_production
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.resources import AlertsResource


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
