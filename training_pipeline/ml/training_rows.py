"""The rows a registered version was fit on, from the registry's own copy.

Every version stores its training set beside its artifact (``training_set.parquet``,
whose sha256 is the version's data fingerprint).  What needs those rows later (the
drift checks' reference, ``reproduce``) reads that copy, not the export in the data
folder that the version's manifest names by absolute path: the copy travels with the
model, so a data folder moved elsewhere, or a datasets folder cleaned, changes nothing.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from training_pipeline.ml import artifacts

if TYPE_CHECKING:  # pandas loads when rows are read, not with the definitions
    import pandas as pd

    from training_pipeline.ml.registry import ModelRegistry

TRAINING_SET_FILE = "training_set.parquet"


class TrainingRowsError(Exception):
    """A version's stored training set is missing, or altered since registration."""


def verified_training_set(registry: ModelRegistry, metadata: Mapping[str, Any]) -> bytes:
    """The version's stored training set (Parquet bytes), once they hash to the data
    fingerprint.

    Raises:
        TrainingRowsError: Missing, or altered since registration (naming the file).
    """
    version = metadata["version"]
    path = registry.file_location(version, TRAINING_SET_FILE)
    expected = metadata["data_fingerprint"]
    try:
        data = registry.read_file(version, TRAINING_SET_FILE)
    except FileNotFoundError:
        raise TrainingRowsError(
            f"{path} is missing: version {version} was registered without its training set"
        ) from None
    actual = artifacts.sha256_bytes(data)
    if actual != expected:
        raise TrainingRowsError(
            f"training set {path} was altered since registration: sha256 {actual}, "
            f"registered {expected}"
        )
    return data


def registered_training_rows(registry: ModelRegistry, version: str) -> pd.DataFrame:
    """The rows ``version`` was fit on, verified against its data fingerprint.

    Raises:
        TrainingRowsError: The stored training set is missing or altered.
    """
    import pandas as pd

    rows = verified_training_set(registry, registry.metadata(version))
    return pd.read_parquet(io.BytesIO(rows))
