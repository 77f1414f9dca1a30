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
from training_pipeline.ml.problem import ProblemSpec
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


SmokeTest = Callable[[Any, pd.DataFrame, ProblemSpec], SmokeResult]


def smoke_test(model: Any, canary: pd.DataFrame, spec: ProblemSpec) -> SmokeResult:
    """Score ``canary`` and check the model's output is usable for the spec's task.

    Passes when the model scores every row with one finite value, probabilities lie in
    [0, 1] (classification), and the outputs are not all identical (a model that says
    the same thing for everyone has learned nothing, or lost its weights).

    Args:
        model: A loaded, fitted pipeline.
        canary: At least two rows with the spec's feature columns.
        spec: The problem the model was trained for.

    Returns:
        The verdict with every reason it failed.
    """
    rows = len(canary)
    missing = [column for column in spec.features if column not in canary.columns]
    if missing:
        return SmokeResult(False, rows, (f"canary rows lack feature columns {missing}",))
    if rows < 2:
        return SmokeResult(False, rows, (f"need at least 2 canary rows, got {rows}",))
    classify = spec.task_adapter.is_classification
    method = "predict_proba" if classify else "predict"
    if not hasattr(model, method):
        return SmokeResult(False, rows, (f"{type(model).__name__} has no {method}",))
    try:
        raw = np.asarray(getattr(model, method)(canary[list(spec.features)]), dtype=float)
    # Whatever the model raises is the finding, reported as the reason it failed; nothing
    # is hidden, and the caller rolls back.
    except Exception as error:
        reason = f"{method} raised {type(error).__name__}: {error}"
        return SmokeResult(False, rows, (reason,))
    expected = (rows, 2) if classify else (rows,)
    if raw.shape != expected:
        reason = f"expected {method} output of shape {expected}, got {raw.shape}"
        return SmokeResult(False, rows, (reason,))
    output = raw[:, 1] if classify else raw
    kind = "probabilities" if classify else "predictions"
    reasons = []
    if not np.isfinite(output).all():
        reasons.append(f"{int((~np.isfinite(output)).sum())} of {rows} {kind} are not finite")
    elif classify and ((output < 0) | (output > 1)).any():
        reasons.append(f"probabilities outside [0, 1]: min {output.min()}, max {output.max()}")
    elif np.ptp(output) == 0:
        reasons.append(f"all {rows} {kind} are identical ({output[0]})")
    return SmokeResult(not reasons, rows, tuple(reasons))


def deploy(
    registry: ModelRegistry,
    version: str,
    canary: pd.DataFrame,
    spec: ProblemSpec,
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
