"""`training-pipeline reproduce`: a registered version rebuilt from its stored training set
matches it; an altered training set is refused; library differences are reported."""

from __future__ import annotations

import json
import shutil

import pytest

from training_pipeline.cli import main
from training_pipeline.ml import provenance
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.ml.reproduce import (
    TRAINING_SET_FILE,
    ReproductionError,
    library_differences,
    problem_from_dict,
    reproduce,
)
from training_pipeline.settings import Settings
from training_pipeline_tests.churn_model import CHURN, NAME

pytestmark = pytest.mark.integration  # reads the churn world, trained by its assets in process


@pytest.fixture(scope="module")
def trained(churn_world):
    """A data directory whose churn registry holds one version trained by the assets."""
    assert churn_world.results[0].success
    return churn_world.first_data_dir


@pytest.fixture
def registry(trained, tmp_path, monkeypatch) -> ModelRegistry:
    """A copy of the trained data directory, free to tamper with."""
    data_dir = tmp_path / "data"
    shutil.copytree(trained, data_dir)
    monkeypatch.setenv("TRAINING_PIPELINE_DATA_DIR", str(data_dir))
    return ModelRegistry.for_model(Settings.from_env().models_dir, NAME)


def test_a_registered_version_rebuilt_from_its_training_set_matches_it(registry, capsys):
    version = registry.versions()[0].version
    result = reproduce(registry, version)
    assert result.passed, result.text()
    assert [c.name for c in result.checks] == ["holdout predictions", "holdout metrics"]
    assert result.library_differences == []
    assert result.training_set == registry.get(version).directory / TRAINING_SET_FILE
    assert main(["reproduce", "production", "--model", NAME]) == 0
    out = capsys.readouterr().out
    assert f"{version}: REPRODUCED" in out and "largest absolute difference 0" in out
    assert "library versions: as registered" in out


def test_a_tampered_training_set_is_refused_naming_the_file(registry, capsys):
    version = registry.versions()[0].version
    stored = registry.get(version).directory / TRAINING_SET_FILE
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    with pytest.raises(ReproductionError, match=f"training set {stored} was altered"):
        reproduce(registry, version)
    assert main(["reproduce", version, "--model", NAME]) == 1
    assert f"training set {stored} was altered since registration" in capsys.readouterr().err
    stored.unlink()
    with pytest.raises(ReproductionError, match=f"{stored} is missing"):
        reproduce(registry, version)


def test_a_library_version_difference_is_reported(registry):
    version = registry.versions()[0].version
    installed = provenance.library_versions() | {"numpy": "0.0.1"}
    result = reproduce(registry, version, installed_libraries=installed)
    registered = registry.metadata(version)["library_versions"]["numpy"]
    assert result.library_differences == [f"numpy: registered {registered}, installed 0.0.1"]
    assert "library versions differ from the registered ones:" in result.text()
    assert library_differences({"a": "1"}, {"a": "1", "b": "2"}) == [
        "b: registered unrecorded, installed 2"
    ]


def test_a_rebuild_that_predicts_differently_fails_with_a_non_zero_exit(registry, capsys):
    version = registry.versions()[0]
    path = version.metadata_path
    metadata = json.loads(path.read_text())
    # Other hyperparameters stand for anything that makes the rebuild differ.
    metadata["family"], metadata["params"] = "logistic_regression", {"C": 1e-4}
    path.write_text(json.dumps(metadata))
    result = reproduce(registry, version.version)
    assert not result.passed
    assert "[MISMATCH] holdout predictions" in result.text()
    assert main(["reproduce", version.version, "--model", NAME]) == 1
    assert "NOT REPRODUCED" in capsys.readouterr().out


def test_the_recorded_problem_is_rebuilt_exactly():
    assert problem_from_dict(json.loads(json.dumps(CHURN.to_dict()))) == CHURN
