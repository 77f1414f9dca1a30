"""One registered version, loaded for serving only once it is proven servable.

``load_servable`` reuses the registry's own checks (``ModelRegistry.load``: the
metadata agrees with the index, the artifact's bytes hash to the registered sha256, the
scikit-learn release matches, every type is on the skops allowlist) and then runs the
deployment smoke test (``ml/deployment.smoke_test``) on rows of the version's own
training set, stored beside it in the registry.  A version failing any of it raises
``NotServable`` and is never put behind the endpoint.
"""

from __future__ import annotations

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
from training_pipeline.serving.features import FeatureSpec

CANARY_ROWS = 50


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

    def predict(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        """One ``{"score": ..., "prediction": ...}`` per row: the probability of the
        positive class and the decision at the version's threshold, or the value."""
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
        }


def canary_of(registry: ModelRegistry, version: str, problem: ProblemSpec) -> pd.DataFrame:
    """Up to ``CANARY_ROWS`` feature rows of the training set stored with ``version``.

    Raises:
        NotServable: The version was registered without its training set, so nothing
            can show it scores sensibly.
    """
    path = registry.get(version).directory / TRAINING_SET_FILE
    if not path.exists():
        reason = f"no {TRAINING_SET_FILE} beside it to smoke-test it on ({path})"
        raise NotServable(problem.name, version, reason)
    rows = pd.read_parquet(path, columns=list(problem.features))
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
    canary = canary_of(registry, version, problem)
    # Null categories as the server passes them to the pipeline (features._as_trained).
    canary = canary.astype({c: object for c in problem.categorical or ()})
    canary = canary.where(canary.notna(), np.nan)
    verdict = smoke_test(pipeline, canary, problem)
    if not verdict.passed:
        raise NotServable(name, version, "smoke test failed: " + "; ".join(verdict.reasons))
    return LoadedModel(
        name=name,
        version=version,
        pipeline=pipeline,
        problem=problem,
        features=features,
        threshold=stored_threshold(metadata["metrics"]),
        metrics=dict(metadata["metrics"]),
        sha256=metadata["sha256"],
        data_fingerprint=metadata["data_fingerprint"],
        trained_on=tuple(metadata["trained_on"]),
        created_at=metadata["created_at"],
        loaded_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
