"""The model registry: content-addressed versions, verified loads, atomic alias moves."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import sklearn
from fitted_models import (
    FAMILIES,
    broken,
    canary_rows,
    fitted,
    flip_a_byte,
    register,
    training_rows,
    truncate,
    with_untrusted_step,
)
from synthetic_regression import SALES, store_weeks

from training_pipeline.ml import artifacts, provenance, registry_store
from training_pipeline.ml.artifacts import (
    IncompatibleModelError,
    ModelIntegrityError,
    RegistryError,
    UntrustedArtifactError,
)
from training_pipeline.ml.problem import resolve_roles
from training_pipeline.ml.registry import AliasError, Aliases, ModelRegistry, UnknownVersionError
from training_pipeline_tests.churn_model import CHURN


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    """A registry whose clock ticks a minute per reading, so versions order predictably."""
    start = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    ticks = iter(range(10_000))
    return ModelRegistry(tmp_path / "models", clock=lambda: start + timedelta(minutes=next(ticks)))


def rewrite_metadata(registry: ModelRegistry, version: str, **changes: object) -> None:
    path = registry.get(version).metadata_path
    path.write_text(json.dumps(json.loads(path.read_text()) | changes))


@pytest.mark.parametrize("family", FAMILIES)
def test_a_registered_model_loads_back_with_identical_predictions(registry, family):
    model = fitted(family)
    version = register(registry, model, family=family)

    loaded = registry.load(version.version)

    rows = canary_rows()
    np.testing.assert_array_equal(loaded.predict_proba(rows), model.predict_proba(rows))


@pytest.mark.parametrize(
    ("task", "family"),
    [("binary", f) for f in ("hist_gradient_boosting", "logistic_regression", "random_forest")]
    + [("regression", f) for f in ("hist_gradient_boosting", "ridge", "random_forest")],
)
def test_the_trainers_own_pipelines_fit_the_allowlist(registry, task, family):
    """Regression guard: a new step in ml.pipelines must be allowlisted, or nothing registers."""
    from training_pipeline.ml.pipelines import build_pipeline
    from training_pipeline.ml.tasks import TASKS

    assert family in TASKS[task].families
    params = {
        "hist_gradient_boosting": {"max_iter": 10},
        "logistic_regression": {"C": 1.0},
        "ridge": {"alpha": 1.0},
        "random_forest": {"n_estimators": 5},
    }[family]
    if task == "binary":
        spec, frame = CHURN, training_rows()
    else:
        frame = store_weeks(n_stores=40, n_weeks=3)
        spec, _ = resolve_roles(SALES, frame)
    model = build_pipeline(family, params, spec).fit(frame[list(spec.features)], frame[spec.label])

    loaded = registry.load(register(registry, model, family=family, problem=spec).version)

    rows = frame[list(spec.features)].head(20)
    output = spec.task_adapter.output
    np.testing.assert_array_equal(output(loaded, rows), output(model, rows))


def test_a_version_is_named_by_its_creation_time_and_artifact_hash(registry):
    version = register(registry, fitted())

    digest = hashlib.sha256(version.artifact_path.read_bytes()).hexdigest()
    assert version.sha256 == digest
    assert version.version == f"v20250301T120000-{digest[:12]}"
    assert version.artifact_path == registry.root / "versions" / version.version / "model.skops"


def test_metadata_records_hash_provenance_spec_and_training_data(registry):
    version = register(registry, fitted(), metrics={"roc_auc": np.float64(0.75)})

    metadata = json.loads(version.metadata_path.read_text())

    assert metadata["sha256"] == version.sha256
    assert metadata["family"] == "logistic_regression"
    assert metadata["params"] == {"C": 1.0}
    assert metadata["metrics"] == {"roc_auc": 0.75}
    assert metadata["problem"]["numeric"] == list(CHURN.numeric)
    assert metadata["problem"]["label"] == "churned"
    assert metadata["problem"]["label_horizon"] == "P30DT0H0M0S"
    assert metadata["data_fingerprint"] == "sha256:feedface"
    assert metadata["trained_on"] == ["orders_2025-01-06.csv", "orders_2025-01-07.csv"]
    assert metadata["code_version"] == provenance.code_version()
    assert metadata["created_at"] == "2025-03-01T12:00:00.000000+00:00"
    libraries = metadata["library_versions"]
    assert {"python", "scikit-learn", "skops", "numpy", "pandas", "optuna"} <= set(libraries)
    assert libraries["scikit-learn"] == sklearn.__version__


def test_extra_files_are_copied_beside_the_artifact_with_their_hashes(registry, tmp_path):
    report = tmp_path / "evaluation.html"
    report.write_text("<h1>ROC</h1>")

    version = register(
        registry, fitted(), extra_files={"report.html": report, "model_card.md": b"# Churn"}
    )

    assert (version.directory / "report.html").read_text() == "<h1>ROC</h1>"
    assert (version.directory / "model_card.md").read_bytes() == b"# Churn"
    files = json.loads(version.metadata_path.read_text())["files"]
    assert files["model_card.md"] == hashlib.sha256(b"# Churn").hexdigest()


@pytest.mark.parametrize("name", ["model.skops", "metadata.json", "../escape.txt", ""])
def test_an_extra_file_may_not_replace_the_artifact_or_leave_the_directory(registry, name):
    with pytest.raises(RegistryError, match="cannot store an extra file"):
        register(registry, fitted(), extra_files={name: b"x"})

    assert registry.versions() == []


def test_metadata_that_cannot_be_stored_as_json_is_refused_and_nothing_is_kept(registry):
    with pytest.raises(TypeError, match="cannot store"):
        register(registry, fitted(), params={"class_weight": object()})

    assert registry.versions() == []
    assert list((registry.root / "versions").iterdir()) == []


def test_code_version_is_the_git_commit_in_a_checkout_and_unknown_elsewhere(tmp_path):
    assert provenance.code_version(tmp_path) == "unknown"
    if shutil.which("git") and (provenance.REPO_DIR / ".git").exists():
        assert re.fullmatch(r"[0-9a-f]{40}", provenance.code_version())


def test_versions_are_listed_newest_first(registry):
    first = register(registry, fitted("logistic_regression"))
    second = register(registry, fitted("random_forest"), family="random_forest")

    assert [v.version for v in registry.versions()] == [second.version, first.version]


def test_an_empty_registry_has_no_versions_and_no_production(registry):
    assert registry.versions() == []
    assert registry.production() is None
    assert registry.aliases() == Aliases(None, None)
    assert not registry.root.exists()


def test_an_unknown_version_is_named_in_the_error(registry):
    with pytest.raises(UnknownVersionError, match="v20990101T000000-000000000000"):
        registry.load("v20990101T000000-000000000000")


def test_a_corrupted_artifact_is_refused_naming_version_path_and_both_hashes(registry):
    version = register(registry, fitted())
    flip_a_byte(version.artifact_path)
    actual = hashlib.sha256(version.artifact_path.read_bytes()).hexdigest()

    with pytest.raises(ModelIntegrityError) as refused:
        registry.load(version.version)

    error = refused.value
    assert (error.version, error.path, error.expected, error.actual) == (
        version.version,
        version.artifact_path,
        version.sha256,
        actual,
    )
    for part in (version.version, str(version.artifact_path), version.sha256, actual):
        assert part in str(error)


def test_a_truncated_artifact_is_refused(registry):
    version = register(registry, fitted())
    truncate(version.artifact_path)

    with pytest.raises(ModelIntegrityError, match="corrupt or truncated"):
        registry.load(version.version)


def test_a_missing_artifact_is_refused(registry):
    version = register(registry, fitted())
    version.artifact_path.unlink()

    with pytest.raises(ModelIntegrityError, match="missing"):
        registry.load(version.version)


def test_metadata_whose_hash_disagrees_with_the_index_is_refused(registry):
    version = register(registry, fitted())
    rewrite_metadata(registry, version.version, sha256="0" * 64)

    with pytest.raises(ModelIntegrityError, match="disagree"):
        registry.load(version.version)


def test_registering_a_model_with_a_type_outside_the_allowlist_writes_nothing(registry):
    with pytest.raises(UntrustedArtifactError, match="fitted_models.passthrough"):
        register(registry, with_untrusted_step())

    assert registry.versions() == []
    assert not (registry.root / "versions").exists()


def test_loading_an_artifact_with_a_type_outside_the_allowlist_is_refused(registry, monkeypatch):
    """As if the allowlist had been narrowed since, or the file written elsewhere."""
    with monkeypatch.context() as widened:
        trusted = artifacts.TRUSTED_TYPES | {"fitted_models.passthrough"}
        widened.setattr(artifacts, "TRUSTED_TYPES", trusted)
        version = register(registry, with_untrusted_step())

    with pytest.raises(UntrustedArtifactError, match="fitted_models.passthrough") as refused:
        registry.load(version.version)
    assert refused.value.types == ["fitted_models.passthrough"]


def test_a_model_from_another_scikit_learn_minor_release_is_refused_naming_both(registry):
    version = register(registry, fitted())
    metadata = json.loads(version.metadata_path.read_text())
    libraries = metadata["library_versions"] | {"scikit-learn": "1.4.2"}
    rewrite_metadata(registry, version.version, library_versions=libraries)

    with pytest.raises(IncompatibleModelError) as refused:
        registry.load(version.version)

    assert "scikit-learn 1.4.2" in str(refused.value)
    assert f"scikit-learn {sklearn.__version__}" in str(refused.value)


def test_a_model_from_another_patch_release_of_the_same_minor_still_loads(registry):
    version = register(registry, fitted())
    major, minor = sklearn.__version__.split(".")[:2]
    metadata = json.loads(version.metadata_path.read_text())
    libraries = metadata["library_versions"] | {"scikit-learn": f"{major}.{minor}.99"}
    rewrite_metadata(registry, version.version, library_versions=libraries)

    assert registry.load(version.version) is not None


def test_promote_moves_production_to_previous_production(registry):
    first = register(registry, fitted()).version
    second = register(registry, fitted("random_forest"), family="random_forest").version

    registry.promote(first)
    change = registry.promote(second, reason="beat the champion", actor="ci")

    assert registry.aliases() == Aliases(production=second, previous_production=first)
    assert registry.production().version == second
    assert (change.action, change.reason, change.actor) == ("promote", "beat the champion", "ci")
    assert change.before == Aliases(first, None)
    assert [c.after.production for c in registry.history()] == [first, second]


def test_promoting_the_model_already_in_production_is_refused(registry):
    version = register(registry, fitted()).version
    registry.promote(version)

    with pytest.raises(AliasError, match="already in production"):
        registry.promote(version)


def test_promoting_a_corrupted_artifact_leaves_production_unchanged(registry):
    good = register(registry, fitted()).version
    bad = register(registry, fitted("random_forest"), family="random_forest")
    registry.promote(good)
    flip_a_byte(bad.artifact_path)

    with pytest.raises(ModelIntegrityError):
        registry.promote(bad.version)

    assert registry.aliases() == Aliases(good, None)


def test_rollback_restores_the_previous_production_and_records_why(registry):
    first = register(registry, fitted()).version
    second = register(registry, fitted("random_forest"), family="random_forest").version
    registry.promote(first)
    registry.promote(second)

    change = registry.rollback(reason="complaints from the retention team", actor="alice")

    assert registry.aliases() == Aliases(production=first, previous_production=None)
    last = registry.history()[-1]
    assert last == change
    assert (last.action, last.reason, last.actor) == (
        "rollback",
        "complaints from the retention team",
        "alice",
    )
    assert last.before == Aliases(second, first)
    rejected = registry.get(second).rejected
    assert (rejected.actor, rejected.reason) == ("alice", "complaints from the retention team")
    assert rejected.at == last.at
    assert registry.get(first).rejected is None


def test_rollback_to_a_named_version_restores_it(registry):
    first, second, third = (register(registry, fitted(f), family=f).version for f in FAMILIES)
    for version in (first, second, third):
        registry.promote(version)

    registry.rollback(to=first)

    # The version rolled back from is rejected; the one before it may still come back.
    assert registry.aliases() == Aliases(production=first, previous_production=second)
    assert registry.get(third).rejected is not None


def test_rollback_without_a_previous_production_fails_clearly(registry):
    only = register(registry, fitted()).version
    registry.promote(only)

    with pytest.raises(AliasError, match="no previous production"):
        registry.rollback()

    assert registry.aliases() == Aliases(only, None)


def test_a_second_rollback_does_not_bring_back_the_model_rolled_back_from(registry):
    first = register(registry, fitted()).version
    second = register(registry, fitted("random_forest"), family="random_forest").version
    registry.promote(first)
    registry.promote(second)
    registry.rollback()

    with pytest.raises(AliasError, match="no previous production"):
        registry.rollback()


def test_rollback_without_any_production_fails_clearly(registry):
    register(registry, fitted())

    with pytest.raises(AliasError, match="no production model"):
        registry.rollback()


def test_rollback_to_a_corrupted_version_is_refused_and_production_is_unchanged(registry):
    first = register(registry, fitted())
    second = register(registry, fitted("random_forest"), family="random_forest").version
    registry.promote(first.version)
    registry.promote(second)
    truncate(first.artifact_path)

    with pytest.raises(ModelIntegrityError):
        registry.rollback()

    assert registry.aliases() == Aliases(second, first.version)


def test_rollback_to_an_unknown_version_is_refused(registry):
    registry.promote(register(registry, fitted()).version)

    with pytest.raises(UnknownVersionError, match="v-nope"):
        registry.rollback(to="v-nope")


def test_record_gate_stores_the_decision_on_the_version(registry):
    version = register(registry, fitted()).version

    registry.record_gate(version, {"passed": False, "reasons": ["roc_auc below 0.7"]})

    stored = registry.get(version)
    assert stored.gate == {"passed": False, "reasons": ["roc_auc below 0.7"]}
    assert stored.gate_recorded_at is not None
    with pytest.raises(UnknownVersionError):
        registry.record_gate("v-nope", {"passed": True})


def test_the_alias_history_keeps_every_change(registry):
    first = register(registry, fitted()).version
    second = register(registry, fitted("random_forest"), family="random_forest").version
    for version in (first, second) * 30:
        registry.promote(version)

    assert len(registry.history()) == 60


def test_a_crash_during_an_index_write_leaves_the_old_index_readable_and_intact(
    registry, monkeypatch
):
    first = register(registry, fitted()).version
    second = register(registry, fitted("random_forest"), family="random_forest").version
    registry.promote(first)
    index = registry.root / registry_store.INDEX_FILE
    before = index.read_bytes()

    def crash(source: object, target: object) -> None:
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        registry.promote(second)
    monkeypatch.undo()

    assert index.read_bytes() == before
    assert registry.aliases() == Aliases(first, None)
    assert sorted(p.name for p in registry.root.iterdir()) == [
        ".registry.lock",
        "registry.json",
        "versions",
    ]


def test_a_crash_while_publishing_a_version_leaves_no_partial_version(registry, monkeypatch):
    def crash(source: object, target: object) -> None:
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(OSError, match="simulated crash"):
        register(registry, fitted())
    monkeypatch.undo()

    assert registry.versions() == []
    assert list((registry.root / "versions").iterdir()) == []


def test_readers_never_see_a_half_written_index_while_aliases_move(registry):
    first = register(registry, fitted()).version
    second = register(registry, fitted("random_forest"), family="random_forest").version
    index = registry.root / registry_store.INDEX_FILE
    seen: list[str | None] = []

    def move_aliases() -> None:
        for version in [first, second] * 10:
            registry.promote(version)

    writer = threading.Thread(target=move_aliases)
    writer.start()
    while writer.is_alive():
        seen.append(json.loads(index.read_bytes())["aliases"]["production"])
    writer.join()

    assert seen and set(seen) <= {None, first, second}
    assert registry.aliases().production == second


def test_a_broken_but_trusted_model_still_registers_and_loads(registry):
    """Deployment's smoke test, not the registry, is what catches a model like this."""
    version = register(registry, broken("nan")).version

    assert np.isnan(registry.load(version).predict_proba(canary_rows())).all()


def test_reports_attached_after_registration_sit_beside_the_model_with_their_hashes(
    registry,
):
    version = register(registry, fitted())
    paths = registry.attach(version.version, {"report.html": b"<html></html>"})
    assert paths["report.html"].read_bytes() == b"<html></html>"
    files = registry.metadata(version.version)["files"]
    assert files["report.html"] == hashlib.sha256(b"<html></html>").hexdigest()
    with pytest.raises(RegistryError, match="cannot attach"):
        registry.attach(version.version, {"model.skops": b"x"})
    with pytest.raises(UnknownVersionError):
        registry.attach("v-missing", {"report.html": b"x"})
