"""Rollback as a decision the automation respects: rejections, pins and the alias history."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fitted_models import fitted, register

from training_pipeline.ml.registry import (
    AliasError,
    Aliases,
    ModelRegistry,
    PinnedError,
)
from training_pipeline.ml.registry_aliases import previous_of
from training_pipeline.ml.registry_store import INDEX_FILE, AliasChange


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    start = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    ticks = iter(range(10_000))
    return ModelRegistry(tmp_path / "models", clock=lambda: start + timedelta(minutes=next(ticks)))


def three_in_production(registry: ModelRegistry) -> list[str]:
    """Three versions on three training sets, promoted in turn."""
    versions = []
    for number in range(3):
        version = register(registry, fitted(), data_fingerprint=f"sha256:set{number}").version
        registry.promote(version)
        versions.append(version)
    return versions


def test_rolling_back_twice_goes_back_two_versions(registry):
    first, second, third = three_in_production(registry)

    registry.rollback(reason="bad scores", actor="alice")
    assert registry.aliases() == Aliases(second, first)
    registry.rollback(reason="still bad", actor="alice")

    assert registry.aliases() == Aliases(first, None)
    assert [registry.get(v).rejected.reason for v in (third, second)] == ["bad scores", "still bad"]


def test_a_rejected_version_is_never_previous_production_again(registry):
    first, second, third = three_in_production(registry)
    registry.rollback(reason="bad scores")
    fourth = register(registry, fitted(), data_fingerprint="sha256:set3").version

    registry.promote(fourth)

    assert registry.aliases() == Aliases(fourth, second)


def test_automation_may_not_promote_a_rejected_version(registry):
    first, second, third = three_in_production(registry)
    registry.rollback(reason="bad scores", actor="alice")

    block = registry.promotion_block(third)

    assert block is not None and "rejected" in block and "alice" in block and "bad scores" in block


def test_automation_may_not_promote_a_twin_of_a_rejected_version(registry):
    first, second, third = three_in_production(registry)
    registry.rollback(reason="bad scores")
    twin = register(registry, fitted("random_forest"), data_fingerprint="sha256:set2").version
    fresh = register(registry, fitted(), data_fingerprint="sha256:set9").version

    block = registry.promotion_block(twin)

    assert block is not None and "same training set" in block and third in block
    assert registry.promotion_block(fresh) is None


def test_while_pinned_nothing_is_promoted_and_unpinning_lets_it(registry):
    first, second, third = three_in_production(registry)
    fresh = register(registry, fitted(), data_fingerprint="sha256:set9").version

    pin = registry.pin(reason="investigating complaints", actor="bob")

    assert (pin.action, pin.actor, pin.before, pin.after) == ("pin", "bob", pin.after, pin.after)
    assert "pinned to " + third in registry.promotion_block(fresh)
    with pytest.raises(PinnedError, match="pinned"):
        registry.promote(fresh)
    assert registry.aliases().production == third

    registry.unpin(reason="fixed", actor="bob")

    assert registry.promotion_block(fresh) is None
    registry.promote(fresh)
    assert [c.action for c in registry.history()][-3:] == ["pin", "unpin", "promote"]


def test_a_rollback_while_pinned_keeps_the_pin_on_the_restored_version(registry):
    first, second, third = three_in_production(registry)
    registry.pin(reason="hold")

    registry.rollback(reason="bad scores")

    assert registry.pinned().version == second


def test_pinning_twice_or_unpinning_an_unpinned_registry_is_refused(registry):
    three_in_production(registry)
    with pytest.raises(AliasError, match="not pinned"):
        registry.unpin(reason="nothing")
    registry.pin(reason="hold", actor="bob")
    with pytest.raises(AliasError, match="already pinned by bob"):
        registry.pin(reason="again")


def test_pinning_without_a_production_model_is_refused(registry):
    with pytest.raises(AliasError, match="no production model to pin"):
        registry.pin(reason="hold")


def test_restoring_a_rejected_version_by_name_lifts_its_rejection(registry):
    first, second, third = three_in_production(registry)
    registry.rollback(reason="bad scores")

    registry.rollback(to=third, reason="it was the data, not the model")

    assert registry.get(third).rejected is None
    assert registry.get(second).rejected.reason == "it was the data, not the model"


def test_an_index_written_before_rejections_and_pins_still_loads_and_rolls_back(registry):
    # Regression: a rollback used to empty previous_production, and the index recorded
    # neither rejections nor pins.
    first, second, third = three_in_production(registry)
    index_path = registry.root / INDEX_FILE
    index = json.loads(index_path.read_text())
    index["history"].append(
        {
            "action": "rollback",
            "reason": "rollback",
            "actor": "alice",
            "at": "2025-03-02T00:00:00.000000+00:00",
            "before": {"production": third, "previous_production": second},
            "after": {"production": second, "previous_production": None},
        }
    )
    index["aliases"] = {"production": second, "previous_production": None}
    index_path.write_text(json.dumps(index))

    assert registry.pinned() is None
    assert registry.get(third).rejected is None
    fourth = register(registry, fitted(), data_fingerprint="sha256:set3").version
    registry.promote(fourth)

    # The version rolled back from in the old index does not come back.
    assert registry.aliases() == Aliases(fourth, second)
    registry.rollback()
    assert registry.aliases() == Aliases(second, first)


def test_previous_production_skips_versions_that_left_for_a_reason():
    def change(action: str, before: str | None, after: str | None) -> AliasChange:
        return AliasChange(action, "", "", "", Aliases(before, None), Aliases(after, None))

    history = [
        change("promote", None, "a"),
        change("promote", "a", "b"),
        change("promote", "b", "c"),
        change("withdraw", "c", None),
        change("rollback", None, "b"),
    ]

    assert previous_of(history, "b", rejected=set()) == "a"
    assert previous_of(history, "b", rejected={"a"}) is None
