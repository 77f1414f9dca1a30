"""Rebuild a registered model version from what the registry kept, and check it matches.

Every version stores its training set (``training_set.parquet``, whose sha256 is the
version's data fingerprint), the problem it solved (with the feature roles it saw), its
family and hyperparameters, and the run settings of its training
(``training_run.json``).  ``reproduce`` refits the final model on the same training
rows, scores the same holdout, and compares with the registered artifact:

- predictions on the holdout equal within ``PREDICTION_TOLERANCE`` (absolute);
- every registered holdout metric equal within ``METRIC_TOLERANCE`` (absolute);
- library versions as recorded; a difference is reported, not judged, since it is the
  likely cause when the other checks fail.

The decision threshold (binary) is the registered one: it was chosen on out-of-fold
predictions during tuning and is part of the version, like its hyperparameters.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training_pipeline.ml import artifacts, provenance
from training_pipeline.ml.evaluation import evaluate
from training_pipeline.ml.metrics import METRICS
from training_pipeline.ml.pipelines import RANDOM_STATE
from training_pipeline.ml.problem import (
    DriftSettings,
    GatePolicy,
    Holdout,
    ProblemSpec,
    ScoreColumns,
)
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.ml.splits import holdout_split
from training_pipeline.ml.training_rows import (
    TRAINING_SET_FILE,
    TrainingRowsError,
    verified_training_set,
)
from training_pipeline.ml.tuning import fit_final
from training_pipeline.ml.workflow import scores_of

TRAINING_RUN_FILE = "training_run.json"
PREDICTION_TOLERANCE = 1e-9
METRIC_TOLERANCE = 1e-9


class ReproductionError(Exception):
    """The version cannot be rebuilt at all: its training set is missing or altered, or it
    was registered without what a rebuild needs."""


@dataclass(frozen=True)
class TrainingRun:
    """The settings of the training run that a rebuild must repeat."""

    holdout_periods: int | None  # None: the problem's holdout
    threads: int
    tuning_seed: int
    estimator_seed: int = RANDOM_STATE

    def to_bytes(self) -> bytes:
        return artifacts.to_json_bytes(dataclasses.asdict(self))


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Reproduction:
    version: str
    training_set: Path | str  # where the registered training set is
    checks: list[Check]
    library_differences: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def text(self) -> str:
        verdict = "REPRODUCED" if self.passed else "NOT REPRODUCED"
        lines = [f"{self.version}: {verdict}", f"training set: {self.training_set} (sha256 ok)"]
        lines += [
            f"  [{'ok' if c.passed else 'MISMATCH'}] {c.name}: {c.detail}" for c in self.checks
        ]
        if self.library_differences:
            lines.append("library versions differ from the registered ones:")
            lines += [f"  {difference}" for difference in self.library_differences]
        else:
            lines.append("library versions: as registered")
        return "\n".join(lines)


def problem_from_dict(data: Mapping[str, Any]) -> ProblemSpec:
    """The ``ProblemSpec`` a version's metadata recorded (``ProblemSpec.to_dict``)."""
    fields = dict(data)
    tuples = ("numeric", "categorical", "exclude", "report_metrics", "families")
    for name in tuples:
        if fields.get(name) is not None:
            fields[name] = tuple(fields[name])
    drift = dict(fields["drift"])
    drift["exclude"] = tuple(drift.get("exclude", ()))
    return ProblemSpec(
        **fields
        | {
            "label_horizon": pd.Timedelta(fields["label_horizon"]).to_pytimedelta(),
            "holdout": Holdout(**fields["holdout"]),
            "gate": GatePolicy(**fields["gate"]),
            "drift": DriftSettings(**drift),
            "scores": ScoreColumns(**fields["scores"]),
        }
    )


def library_differences(registered: Mapping[str, str], installed: Mapping[str, str]) -> list[str]:
    """One line per library whose registered and installed versions differ."""
    names = sorted(set(registered) | set(installed))
    return [
        f"{name}: registered {registered.get(name, 'unrecorded')}, "
        f"installed {installed.get(name, 'not installed')}"
        for name in names
        if registered.get(name) != installed.get(name)
    ]


def training_run(registry: ModelRegistry, version: str) -> TrainingRun:
    path = registry.file_location(version, TRAINING_RUN_FILE)
    try:
        return TrainingRun(**json.loads(registry.read_file(version, TRAINING_RUN_FILE)))
    except FileNotFoundError:
        raise ReproductionError(
            f"{path} is missing: the version was registered before training runs were "
            "recorded, so its holdout and threads are unknown"
        ) from None


def reproduce(
    registry: ModelRegistry,
    version: str,
    installed_libraries: Mapping[str, str] | None = None,
) -> Reproduction:
    """Refit ``version`` from its registered training set and compare it with the artifact.

    Raises:
        ReproductionError: The training set is missing or altered, or no training run
            was recorded.
        RegistryError: The version is unknown or its artifact does not verify.
    """
    metadata = registry.metadata(version)
    try:
        rows = verified_training_set(registry, metadata)
    except TrainingRowsError as error:
        raise ReproductionError(f"{error}; it cannot be rebuilt") from None
    run = training_run(registry, version)
    problem = problem_from_dict(metadata["problem"])
    frame = pd.read_parquet(io.BytesIO(rows))
    train, holdout = holdout_split(frame, problem, run.holdout_periods)
    rebuilt = fit_final(train, problem, metadata["family"], metadata["params"], run.threads)
    registered = registry.load(version)
    stored = metadata["metrics"]
    threshold = stored.get("threshold")
    checks = [_prediction_check(registered, rebuilt, holdout, problem)]
    checks.append(_metrics_check(stored, evaluate(rebuilt, holdout, problem, threshold)))
    installed = (
        provenance.library_versions() if installed_libraries is None else installed_libraries
    )
    differences = library_differences(metadata.get("library_versions", {}), installed)
    path = registry.file_location(version, TRAINING_SET_FILE)
    return Reproduction(version, path, checks, differences)


def _prediction_check(registered, rebuilt, holdout: pd.DataFrame, problem) -> Check:
    before, after = scores_of(registered, holdout, problem), scores_of(rebuilt, holdout, problem)
    gap = float(np.max(np.abs(before - after))) if len(holdout) else 0.0
    return Check(
        "holdout predictions",
        gap <= PREDICTION_TOLERANCE,
        f"{len(holdout)} rows, largest absolute difference {gap:.3g} "
        f"(tolerance {PREDICTION_TOLERANCE:g})",
    )


def _metrics_check(stored: Mapping[str, Any], measured) -> Check:
    names = [name for name in stored if name in METRICS]
    gaps = {name: abs(float(stored[name]) - measured[name]) for name in names}
    off = {name: gap for name, gap in gaps.items() if gap > METRIC_TOLERANCE}
    shown = ", ".join(f"{name} {measured[name]:.6f}" for name in names)
    if off:
        detail = "; ".join(
            f"{name} registered {float(stored[name]):.6f}, rebuilt {measured[name]:.6f}"
            for name in off
        )
        return Check("holdout metrics", False, f"{detail} (tolerance {METRIC_TOLERANCE:g})")
    return Check("holdout metrics", True, f"{shown} (tolerance {METRIC_TOLERANCE:g})")
