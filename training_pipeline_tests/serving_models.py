"""Registered churn versions the server can serve: real fitted pipelines, each stored
with the training set the server smoke-tests it on, and a decision threshold."""

from __future__ import annotations

import dataclasses
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from fitted_models import fitted, register, training_rows

from training_pipeline.ingestion.file_formats import sha256_of
from training_pipeline.ml.datasets import TrainingSet
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.ml.training_rows import TRAINING_SET_FILE
from training_pipeline_tests.churn_model import CHURN

NAME = "churn"


def ticking_clock():
    """A clock one second further on every call: each registration gets its own version id."""
    moments = itertools.count()
    start = datetime(2026, 1, 5, tzinfo=UTC)
    return lambda: start + timedelta(seconds=next(moments))


def churn_registry(models_dir: Path) -> ModelRegistry:
    return ModelRegistry.for_model(models_dir, NAME, clock=ticking_clock())


def servable(
    registry: ModelRegistry,
    family: str = "logistic_regression",
    model: Any = None,
    scratch: Path | None = None,
) -> str:
    """Register ``model`` (default: a fitted ``family`` pipeline) with its training rows,
    written first to ``scratch`` (default: beside a local registry), their sha256 its data
    fingerprint as in a real registration; the new version's id."""
    training = (scratch or registry.root.parent) / "training_set.parquet"
    if not training.exists():
        training.parent.mkdir(parents=True, exist_ok=True)
        training_rows().to_parquet(training)
    metrics = {"roc_auc": 0.81, "threshold": 0.5}
    version = register(
        registry,
        fitted(family) if model is None else model,
        family=family,
        metrics=metrics,
        data_fingerprint=sha256_of(training),
        extra_files={TRAINING_SET_FILE: training, "training_set.json": manifest(training)},
    )
    return version.version


def manifest(training: Path) -> bytes:
    """The export manifest of ``training`` (what the drift checks read the reference from)."""
    rows = pd.read_parquet(training)
    dataset = TrainingSet(
        path=str(training),
        fingerprint=sha256_of(training),
        rows=len(rows),
        snapshots=rows[CHURN.time_column].nunique(),
        first_snapshot=str(rows[CHURN.time_column].min()),
        last_snapshot=str(rows[CHURN.time_column].max()),
        label_mean=float(rows[CHURN.label].mean()),
        batches=("batch-1",),
    )
    return json.dumps(dataclasses.asdict(dataset)).encode()


def record(index: int = 0) -> dict[str, Any]:
    """One request record with exactly the churn features, as JSON values."""
    row = training_rows()[list(CHURN.features)].iloc[index]
    return {name: (None if pd.isna(value) else _plain(value)) for name, value in row.items()}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
