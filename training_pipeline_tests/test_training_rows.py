"""The drift checks' reference is production's registered training rows: it follows the
model wherever its data folder goes, and rows altered or missing are refused by name."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from training_pipeline.assets.model_drift import production_reference
from training_pipeline.assets.model_names import DeclaredModel
from training_pipeline.ml.datasets import TrainingSet
from training_pipeline.ml.drift import reference_snapshots
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.ml.training_rows import (
    TRAINING_SET_FILE,
    TrainingRowsError,
    registered_training_rows,
)
from training_pipeline_tests.churn_model import NAME, churn_spec, key

pytestmark = pytest.mark.integration  # reads the churn world, trained by its assets in process

CHURN_MODEL = DeclaredModel(churn_spec(), key("features"))


@pytest.fixture
def moved(churn_world, tmp_path: Path) -> ModelRegistry:
    """The first run's data folder at a new place, as `mv` leaves it: every training-set
    manifest still names the export under the folder's old place, which is gone."""
    data = tmp_path / "moved"
    shutil.copytree(churn_world.first_data_dir, data)
    registry = ModelRegistry.for_model(data / "models", NAME)
    old_place = tmp_path / "old-place"
    for version in registry.versions():
        file = registry.get(version.version).directory / "training_set.json"
        manifest = json.loads(file.read_text(encoding="utf-8"))
        manifest["path"] = str(old_place / "datasets" / NAME / Path(manifest["path"]).name)
        file.write_text(json.dumps(manifest), encoding="utf-8")
    return registry


def test_the_drift_reference_is_production_s_registered_rows_after_the_data_folder_moved(moved):
    production = moved.production()
    assert production is not None
    manifest = TrainingSet.from_json(moved.read_file(production.version, "training_set.json"))
    assert not Path(manifest.path).exists()

    found, problem, reference = production_reference(CHURN_MODEL, moved)

    assert found.version == production.version
    rows = registered_training_rows(moved, production.version)
    assert len(rows) == manifest.rows
    assert len(reference) > 0
    pd.testing.assert_frame_equal(reference, reference_snapshots(rows, problem))


def test_registered_rows_altered_or_missing_are_refused_naming_the_file(moved):
    version = moved.production().version
    stored = moved.get(version).directory / TRAINING_SET_FILE
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    altered = f"training set {stored} was altered since registration"
    with pytest.raises(TrainingRowsError, match=re.escape(altered)):
        production_reference(CHURN_MODEL, moved)

    stored.unlink()
    missing = f"{stored} is missing: version {version} was registered without its training set"
    with pytest.raises(TrainingRowsError, match=re.escape(missing)):
        production_reference(CHURN_MODEL, moved)
