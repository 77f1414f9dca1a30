"""Each model's registry where the settings put it: ``<data>/models/<model>`` by default,
``<TRAINING_PIPELINE_REGISTRY_URL>/<model>`` on S3 when that is set.  Every caller (the
assets through their resource, the CLI, serving) opens it here, so none builds a path."""

from __future__ import annotations

from pathlib import Path

from training_pipeline.ingestion.lake import S3Access
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.s3_filesystem import s3_filesystem
from training_pipeline.settings import Settings


def open_registry(root: Path | str, name: str, s3: S3Access | None = None) -> ModelRegistry:
    """The registry of model ``name`` under ``root`` (a folder or an ``s3://`` prefix,
    reached with ``s3``)."""
    if str(root).startswith("s3://"):
        if s3 is None:
            raise ValueError(f"the registry {root} is on S3 but no S3 credentials were given")
        return ModelRegistry.for_model(str(root), name, fs=s3_filesystem(s3))
    return ModelRegistry.for_model(Path(root), name)


def registry_of(settings: Settings, name: str) -> ModelRegistry:
    """The registry of model ``name`` as the settings configure it."""
    return open_registry(settings.registry_root, name, settings.registry_s3)
