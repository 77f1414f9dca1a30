"""Putting a registered model into production, and taking it out again if it misbehaves.

A model can pass every offline gate and still be unservable: an artifact that does not
load here, a pipeline that chokes on today's rows, probabilities that are NaN or all the
same.  ``deploy`` therefore promotes, loads the model back from the registry exactly as
a scorer would, and scores a few canary rows; if anything is wrong it restores the
aliases as they were.  Production never stays on a model that failed its smoke test:
if the previous model cannot be restored either, production is left empty.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from training_pipeline.ml.artifacts import RegistryError
from training_pipeline.ml.feature_spec import FeatureSpec
from training_pipeline.ml.registry import AUTOMATIC_ROLLBACK, AliasChange, ModelRegistry


@dataclass(frozen=True)
class SmokeResult:
    passed: bool
    rows: int
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeployOutcome:
    """What ``deploy`` did.  ``production`` is the version in production afterwards."""

    version: str
    deployed: bool
    production: str | None
    rolled_back: bool = False
    withdrawn: bool = False  # production left empty: the previous model failed to load too
    reasons: tuple[str, ...] = ()
    smoke: SmokeResult | None = None


SmokeTest = Callable[[Any, pd.DataFrame, FeatureSpec], SmokeResult]


def smoke_test(model: Any, canary: pd.DataFrame, spec: FeatureSpec) -> SmokeResult:
    """Score ``canary`` and check the churn probabilities are usable.

    Passes when ``predict_proba`` runs, returns one finite probability in [0, 1] per
    row for the positive class, and the probabilities are not all identical (a model
    that says the same thing for everyone has learned nothing, or lost its weights).

    Args:
        model: A loaded, fitted pipeline.
        canary: At least two rows with the spec's feature columns.
        spec: The feature spec the model was trained with.

    Returns:
        The verdict with every reason it failed.
    """
    rows = len(canary)
    missing = [column for column in spec.features if column not in canary.columns]
    if missing:
        return SmokeResult(False, rows, (f"canary rows lack feature columns {missing}",))
    if rows < 2:
        return SmokeResult(False, rows, (f"need at least 2 canary rows, got {rows}",))
    if not hasattr(model, "predict_proba"):
        return SmokeResult(False, rows, (f"{type(model).__name__} has no predict_proba",))
    try:
        probabilities = np.asarray(model.predict_proba(canary[list(spec.features)]), dtype=float)
    # Whatever the model raises is the finding, reported as the reason it failed; nothing
    # is hidden, and the caller rolls back.
    except Exception as error:
        reason = f"predict_proba raised {type(error).__name__}: {error}"
        return SmokeResult(False, rows, (reason,))
    if probabilities.shape != (rows, 2):
        reason = f"expected {rows} rows of 2 class probabilities, got shape {probabilities.shape}"
        return SmokeResult(False, rows, (reason,))
    churn = probabilities[:, 1]
    reasons = []
    if not np.isfinite(churn).all():
        reasons.append(f"{int((~np.isfinite(churn)).sum())} of {rows} probabilities are not finite")
    elif ((churn < 0) | (churn > 1)).any():
        reasons.append(f"probabilities outside [0, 1]: min {churn.min()}, max {churn.max()}")
    elif np.ptp(churn) == 0:
        reasons.append(f"all {rows} probabilities are identical ({churn[0]})")
    return SmokeResult(not reasons, rows, tuple(reasons))


def deploy(
    registry: ModelRegistry,
    version: str,
    canary: pd.DataFrame,
    spec: FeatureSpec,
    smoke: SmokeTest = smoke_test,
    actor: str | None = None,
) -> DeployOutcome:
    """Promote ``version``, verify it as served, and undo the promotion if it fails.

    Raises (with production unchanged) when the promotion itself is refused: unknown
    version, already in production, or an artifact that does not verify.  Failures
    after the promotion are undone and reported in the outcome; only a crash of the
    smoke test itself is re-raised, after the promotion has been undone.

    Returns:
        ``deployed=True`` with the new production, or ``rolled_back=True`` (aliases
        restored as before) / ``withdrawn=True`` (production emptied) with the reasons.
    """
    change = registry.promote(version, actor=actor)
    try:
        served = registry.load(version)
    except RegistryError as error:
        return _undo(registry, version, change, (f"loading it back failed: {error}",), None, actor)
    try:
        result = smoke(served, canary, spec)
    except BaseException:
        _undo(registry, version, change, ("the smoke test itself crashed",), None, actor)
        raise
    if result.passed:
        return DeployOutcome(version, deployed=True, production=version, smoke=result)
    reasons = result.reasons or ("the smoke test failed",)
    return _undo(registry, version, change, reasons, result, actor)


def _undo(
    registry: ModelRegistry,
    version: str,
    change: AliasChange,
    reasons: tuple[str, ...],
    smoke: SmokeResult | None,
    actor: str | None,
) -> DeployOutcome:
    """Restore the aliases from before ``change``, or empty production if that fails."""
    restored = change.before.production
    try:
        registry.revert(change, reason=AUTOMATIC_ROLLBACK, actor=actor)
    except RegistryError as error:  # the model to restore does not verify any more
        failure = f"restoring {restored} failed: {error}"
        registry.withdraw(version, reason=f"{AUTOMATIC_ROLLBACK}; {failure}", actor=actor)
        reasons = (*reasons, failure)
        return DeployOutcome(
            version, deployed=False, production=None, withdrawn=True, reasons=reasons, smoke=smoke
        )
    return DeployOutcome(
        version, deployed=False, production=restored, rolled_back=True, reasons=reasons, smoke=smoke
    )
