"""Every move of a model's production alias, shown on its production asset in the UI.

A promotion materializes ``<model>/production`` in the run that made it; a rollback, a
pin or an unpin by an operator happens outside any run, so the CLI reports it to the
Dagster instance as an observation of that asset (``report_runless_asset_event``), with
the actor and the reason.  An automatic rollback or a blocked promotion is logged as an
observation by the step that made it.
"""

from __future__ import annotations

import dagster as dg

from training_pipeline.environment import publish_default
from training_pipeline.ml.registry_store import AliasChange
from training_pipeline.settings import REPO_ROOT


def production_key(model: str) -> dg.AssetKey:
    return dg.AssetKey([model, "production"])


def alias_change_metadata(change: AliasChange) -> dict[str, str]:
    return {
        "alias_change": change.action,
        "actor": change.actor,
        "reason": change.reason,
        "at": change.at,
        "production": change.after.production or "(none)",
        "production_before": change.before.production or "(none)",
        "previous_production": change.after.previous_production or "(none)",
    }


def alias_observation(model: str, change: AliasChange) -> dg.AssetObservation:
    return dg.AssetObservation(
        asset_key=production_key(model), metadata=alias_change_metadata(change)
    )


def report_alias_change(model: str, change: AliasChange) -> None:
    """Record ``change`` on the instance in DAGSTER_HOME (the repo's, like ``run``)."""
    publish_default("DAGSTER_HOME", str(REPO_ROOT / "dagster_home"))
    with dg.DagsterInstance.get() as instance:
        instance.report_runless_asset_event(alias_observation(model, change))
