"""One registered version, loaded for serving only once it is proven servable.

``load_servable`` reuses the registry's own checks (``ModelRegistry.load``: the
metadata agrees with the index, the artifact's bytes hash to the registered sha256, the
scikit-learn release matches, every type is on the skops allowlist) and then runs the
deployment smoke test (``ml/deployment.smoke_test``) on rows of the version's own
training set, stored beside it in the registry.  A version failing any of it raises
``NotServable`` and is never put behind the endpoint.

A servable version then gets its fast path (``fast_path.py``) only if, on those same
training rows plus a row of nulls and a row of unseen categories, the fast path gives
the pipeline's own outputs (to 1e-9) and decisions.  Otherwise the version is served by
the plain path, ``Pipeline.predict_proba`` on a frame, which is what the smoke test
verified: a version must not go unserved for want of a speed-up, but which path serves
it is logged and shown (``served_by``, ``path_reason`` on ``GET /v1/models/{name}``).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from training_pipeline.ml.artifacts import RegistryError
from training_pipeline.ml.deployment import smoke_test
from training_pipeline.ml.problem import ProblemSpec
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.ml.reproduce import TRAINING_SET_FILE, problem_from_dict
from training_pipeline.ml.workflow import stored_threshold
from training_pipeline.serving.fast_path import FastPath, NoFastPath, compile_fast_path
from training_pipeline.serving.features import FeatureSpec

log = logging.getLogger(__name__)
CANARY_ROWS = 50
FAST, PLAIN = "fast", "plain"
# Same arithmetic in another order (a dot product, a sigmoid): equal to about 1e-15.
AGREEMENT = {"rtol": 1e-9, "atol": 1e-12}
UNSEEN_CATEGORY = "\x00a category never seen in training"


class NotServable(Exception):
    """A version that failed verification, loading or its smoke test: never served."""

    def __init__(self, model: str, version: str, reason: str) -> None:
        super().__init__(f"model {model} version {version} is not servable: {reason}")
        self.model, self.version, self.reason = model, version, reason


@dataclass(frozen=True)
class LoadedModel:
    """A verified, smoke-tested version; immutable, so a request holding it finishes on
    it whatever the server swaps in meanwhile."""

    name: str
    version: str
    pipeline: Any
    problem: ProblemSpec
    features: FeatureSpec
    threshold: float | None  # binary only
    metrics: dict[str, Any]
    sha256: str
    data_fingerprint: str
    trained_on: tuple[str, ...]
    created_at: str
    loaded_at: str
    fast: FastPath | None  # None: served by the plain path
    path_reason: str  # why this path

    @property
    def served_by(self) -> str:
        return PLAIN if self.fast is None else FAST

    def predict(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """One ``{"score": ..., "prediction": ...}`` per checked record: the probability
        of the positive class and the decision at the version's threshold, or the value."""
        if self.fast is not None:
            scores = self.fast.output(records)
        else:
            frame = self.features.as_frame(records)
            scores = self.problem.task_adapter.output(self.pipeline, frame)
        if not self.problem.task_adapter.has_threshold:
            return [{"score": float(s), "prediction": float(s)} for s in scores]
        return [{"score": float(s), "prediction": self._decision(s)} for s in scores]

    def _decision(self, score: float) -> int | None:
        """1 at or above the version's threshold; None when it recorded none."""
        return None if self.threshold is None else int(score >= self.threshold)

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/models/{name}`` shows."""
        return {
            "name": self.name,
            "version": self.version,
            "task": self.problem.task,
            "metrics": self.metrics,
            "threshold": self.threshold,
            "sha256": self.sha256,
            "trained_on_hash": self.data_fingerprint,
            "trained_on": list(self.trained_on),
            "created_at": self.created_at,
            "loaded_at": self.loaded_at,
            "features": self.features.to_dict(),
            "served_by": self.served_by,
            "path_reason": self.path_reason,
        }


def canary_of(registry: ModelRegistry, version: str, problem: ProblemSpec) -> pd.DataFrame:
    """Up to ``CANARY_ROWS`` feature rows of the training set stored with ``version``.

    Raises:
        NotServable: The version was registered without its training set, so nothing
            can show it scores sensibly.
    """
    try:
        data = registry.read_file(version, TRAINING_SET_FILE)
    except FileNotFoundError:
        path = registry.file_location(version, TRAINING_SET_FILE)
        reason = f"no {TRAINING_SET_FILE} beside it to smoke-test it on ({path})"
        raise NotServable(problem.name, version, reason) from None
    rows = pd.read_parquet(io.BytesIO(data), columns=list(problem.features))
    step = max(1, len(rows) // CANARY_ROWS)
    return rows.iloc[::step].head(CANARY_ROWS)


def load_servable(registry: ModelRegistry, name: str, version: str) -> LoadedModel:
    """``version`` of model ``name``, verified, loaded and smoke-tested.

    Raises:
        NotServable: With the reason: verification or loading failed (any
            ``RegistryError``), the metadata lacks feature roles, or the smoke test failed.
    """
    try:
        pipeline = registry.load(version)
        metadata = registry.metadata(version)
    except RegistryError as error:
        raise NotServable(name, version, str(error)) from error
    try:
        problem = problem_from_dict(metadata["problem"])
        features = FeatureSpec.from_problem(metadata["problem"])
    except (KeyError, TypeError, ValueError) as error:
        raise NotServable(name, version, f"its metadata's problem is unusable: {error}") from error
    records = as_records(canary_of(registry, version, problem))
    # The canary as the server passes it to the pipeline (features.as_frame).
    verdict = smoke_test(pipeline, features.as_frame(records), problem)
    if not verdict.passed:
        raise NotServable(name, version, "smoke test failed: " + "; ".join(verdict.reasons))
    threshold = stored_threshold(metadata["metrics"])
    fast, path_reason = fast_path_of(pipeline, problem, features, threshold, records)
    # A version served without its fast path is slower: worth a warning, not an alert.
    level = logging.INFO if fast is not None else logging.WARNING
    served_by = PLAIN if fast is None else FAST
    log.log(
        level,
        "model %s version %s: served by the %s path (%s)",
        name,
        version,
        served_by,
        path_reason,
    )
    return LoadedModel(
        name=name,
        version=version,
        pipeline=pipeline,
        problem=problem,
        features=features,
        threshold=threshold,
        metrics=dict(metadata["metrics"]),
        sha256=metadata["sha256"],
        data_fingerprint=metadata["data_fingerprint"],
        trained_on=tuple(metadata["trained_on"]),
        created_at=metadata["created_at"],
        loaded_at=datetime.now(UTC).isoformat(timespec="seconds"),
        fast=fast,
        path_reason=path_reason,
    )


def as_records(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as a request sends them: plain Python values, every kind of null None."""
    plain = rows.astype(object)
    return plain.where(plain.notna(), None).to_dict("records")


def fast_path_of(
    pipeline: Any,
    problem: ProblemSpec,
    features: FeatureSpec,
    threshold: float | None,
    canary: list[dict[str, Any]],
) -> tuple[FastPath | None, str]:
    """The version's fast path if it gives the pipeline's outputs and decisions on
    ``canary`` plus a row of nulls and a row of unseen categories; else None and why."""
    task = problem.task_adapter
    try:
        fast = compile_fast_path(pipeline, task.is_classification, problem.numeric or ())
    except NoFastPath as error:
        return None, f"no fast path for this pipeline: {error}"
    unseen = {name: UNSEEN_CATEGORY for name in problem.categorical or ()}
    probes = [*canary, dict.fromkeys(features.names), canary[0] | unseen]
    expected = task.output(pipeline, features.as_frame(probes))
    try:
        got = fast.output(probes)
    # What the replay raises on rows the pipeline scores is the finding, shown as the
    # reason; the pipeline itself (the plain path) just scored them.
    except (ArithmeticError, LookupError, TypeError, ValueError) as error:
        return None, f"the fast path failed on the probe rows: {type(error).__name__}: {error}"
    if got.shape != expected.shape or not np.allclose(got, expected, **AGREEMENT):
        worst = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else None
        return None, (
            f"the fast path disagrees with the pipeline on {len(probes)} probe rows "
            f"(largest difference {worst}, output shapes {got.shape} / {expected.shape})"
        )
    if threshold is not None and not np.array_equal(got >= threshold, expected >= threshold):
        return None, f"the fast path's decisions at threshold {threshold} differ"
    rows = f"{len(probes)} probe rows (training rows, nulls, unseen)"
    return fast, f"{fast.how}; equal to the pipeline on {rows}"
