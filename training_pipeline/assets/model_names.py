"""Everything one declared model owns, named from its name ``m``.

Keys ``m/<asset>``, group ``m``, jobs and sensors ``m__<what>``, the run tag, and the
model's folders inside the model store: two declared models never share any of them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import dagster as dg

from training_pipeline.ml.problem import ProblemSpec
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.resources import ModelStoreResource
from training_pipeline.spec.model_spec import ModelSpec

MODEL_TAG = "training_pipeline/model"
OWNERS = ["team:ml"]


@dataclass(frozen=True)
class DeclaredModel:
    spec: ModelSpec
    features_key: dg.AssetKey  # the dbt model the spec names, found in the dbt assets

    @property
    def name(self) -> str:
        return self.spec.name

    @cached_property
    def problem(self) -> ProblemSpec:
        """The declaration as the ml package reads it; roles may still be to infer."""
        return self.spec.problem

    def problem_of(self, registry: ModelRegistry, version: str) -> ProblemSpec:
        """The problem with the feature roles ``version`` was trained on (the registry
        keeps them), so inferred roles are read once, at training."""
        stored = registry.metadata(version)["problem"]
        return dataclasses.replace(
            self.problem,
            numeric=tuple(stored["numeric"]),
            categorical=tuple(stored["categorical"]),
        )

    def key(self, part: str) -> dg.AssetKey:
        return dg.AssetKey([self.name, part])

    @property
    def training_set(self) -> dg.AssetKey:
        return self.key("training_set")

    @property
    def candidate(self) -> dg.AssetKey:
        return self.key("candidate")

    @property
    def validation(self) -> dg.AssetKey:
        return self.key("validation")

    @property
    def production(self) -> dg.AssetKey:
        return self.key("production")

    @property
    def scores(self) -> dg.AssetKey:
        return self.key("scores")

    @property
    def live_predictions(self) -> dg.AssetKey:
        return self.key("live_predictions")

    @property
    def feature_drift_check(self) -> dg.AssetCheckKey:
        # On the features asset, which two models may share: the name keeps them apart.
        return dg.AssetCheckKey(self.features_key, f"{self.name}_feature_drift")

    @property
    def tags(self) -> dict[str, str]:
        return {MODEL_TAG: self.name}

    def job_name(self, what: str) -> str:
        return f"{self.name}__{what}"

    def registry(self, store: ModelStoreResource) -> ModelRegistry:
        return store.registry_of(self.name)

    def datasets_dir(self, store: ModelStoreResource) -> Path:
        return Path(store.datasets_dir) / self.name

    def reports_dir(self, store: ModelStoreResource) -> Path:
        return Path(store.reports_dir) / self.name

    def prediction_logs_dir(self, store: ModelStoreResource) -> Path:
        """The online server's prediction log: a folder per model (serving/prediction_log.py)."""
        return Path(store.prediction_logs_dir)
