"""A pinned production under the real Dagster daemon: drift still retrains and gates,
nothing is promoted, the operator hears why; unpinned, the next drifted day's model is
promoted as usual.

The rest of the scenario (a normal day, a drift retraining promoted, rollback --pin, a
failing run's alert) is test_automation_end_to_end.py's, on a world of its own: the two
halves run on two xdist workers at once.
"""

from __future__ import annotations

import dagster as dg
import pytest
from churn_demo.generator import generate
from daemon_helpers import (
    DRIFTED_WEEK,
    alert_kinds,
    cli,
    drift_runs,
    quiet,
    settle_first_look,
    wait_for,
)

from training_pipeline.ml.registry import ModelRegistry

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.timeout(2400)
def test_a_pinned_production_is_retrained_on_drift_but_promoted_only_after_unpinning(pipeline):
    instance, settings = pipeline["instance"], pipeline["settings"]
    registry = ModelRegistry.for_model(settings.models_dir, "churn")
    first_model = registry.production().version
    settle_first_look(instance)
    cli(pipeline, "pin", "--reason", "retention team complaints")
    observed = instance.fetch_observations(dg.AssetKey(["churn", "production"]), limit=5)
    assert [r.asset_observation.metadata["alias_change"].value for r in observed.records] == ["pin"]

    # A drifted week: retrained (new data), gated, but not promoted.
    generate(settings, days=DRIFTED_WEEK, drift=True)
    wait_for("a drift retraining", lambda: len(drift_runs(instance)) == 1, 900)
    wait_for("the daemon's runs to finish", lambda: quiet(instance), 900)
    assert registry.production().version == first_model
    versions = registry.versions()
    retrained = versions[0]
    assert len(versions) == 2 and retrained.gate is not None
    blocked = "promotion_blocked" if retrained.gate["passed"] else "blocking_check_failed"
    kinds = alert_kinds(settings)
    assert blocked in kinds
    expected = {"drift_detected ERROR": 1, "retrain_launched": 1, "model_promoted": 1}
    assert {kind: kinds.count(kind) for kind in expected} == expected, kinds

    # Unpinned, the next drifted week's model is promoted as usual.
    cli(pipeline, "unpin", "--reason", "complaints resolved")
    generate(settings, days=DRIFTED_WEEK, drift=True)
    wait_for(
        "a new model in production after unpinning",
        lambda: registry.production().version not in (first_model, retrained.version),
        900,
    )
    wait_for("the daemon's runs to finish", lambda: quiet(instance), 600)
    assert len(drift_runs(instance)) == 2
    kinds = alert_kinds(settings)
    assert {"production_pinned", "production_unpinned"} <= set(kinds)
    assert kinds.count("retrain_launched") == 2 and kinds.count("model_promoted") == 2, kinds
