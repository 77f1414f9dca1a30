"""One registry contract, run on both stores: the local folder (rename + file lock) and
S3 (conditional writes, on moto).  Whatever the pipeline relies on must hold on each."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from at_once import at_once
from fitted_models import canary_rows, fitted, register

from training_pipeline.ml.artifacts import ModelIntegrityError, sha256_bytes
from training_pipeline.ml.registry import ModelRegistry, PinnedError
from training_pipeline.ml.registry_local import LocalRegistryStore
from training_pipeline.ml.registry_s3 import S3RegistryStore

# The S3 store talks to a local S3 server: outside the inner loop.
STORES = ["folder", pytest.param("s3", marks=pytest.mark.integration)]


def ticking() -> Callable[[], datetime]:
    start, ticks = datetime(2025, 3, 1, 12, 0, tzinfo=UTC), iter(range(10_000))
    return lambda: start + timedelta(minutes=next(ticks))


@pytest.fixture(params=STORES)
def open_registry(request, tmp_path: Path) -> Callable[[], ModelRegistry]:
    """Opens the one registry of this test, as another process would: a new instance."""
    if request.param == "folder":
        return lambda: ModelRegistry(LocalRegistryStore(tmp_path / "models"), clock=ticking())
    bucket, fs = request.getfixturevalue("s3_bucket")
    root = f"s3://{bucket}/models/churn"
    return lambda: ModelRegistry(S3RegistryStore(root, fs), clock=ticking())


@pytest.fixture
def registry(open_registry) -> ModelRegistry:
    return open_registry()


def overwrite(registry: ModelRegistry, version: str, name: str, data: bytes) -> None:
    """Replace a stored file behind the registry's back, as an accident or attack would."""
    store = registry.store
    if isinstance(store, S3RegistryStore):
        store.fs.pipe_file(store.key_of(version, name), data)
    else:
        Path(store.location(version, name)).write_bytes(data)


def test_a_registered_model_loads_back_with_identical_predictions(registry):
    model = fitted()
    version = register(registry, model, extra_files={"card.md": b"# churn"}).version
    loaded = registry.load(version)
    rows = canary_rows()
    np.testing.assert_array_equal(loaded.predict_proba(rows), model.predict_proba(rows))
    assert registry.verify(version) == registry.get(version).sha256
    assert registry.metadata(version)["files"] == {"card.md": sha256_bytes(b"# churn")}
    assert registry.read_file(version, "card.md") == b"# churn"


def test_promote_then_rollback_sticks_the_rolled_back_version_is_rejected(registry):
    first = register(registry, fitted()).version
    second = register(registry, fitted("random_forest")).version
    registry.promote(first)
    registry.promote(second)
    assert (registry.aliases().production, registry.aliases().previous_production) == (
        second,
        first,
    )
    registry.rollback(reason="test: worse in production")
    reopened = ModelRegistry(registry.store)
    assert reopened.aliases().production == first
    assert reopened.get(second).rejected is not None
    assert "rolled back" in (reopened.promotion_block(second) or "")
    assert [c.action for c in reopened.history()] == ["promote", "promote", "rollback"]


def test_concurrent_promotions_from_separate_processes_are_all_recorded(open_registry):
    setup = open_registry()
    versions = [register(setup, fitted()).version for _ in range(4)]
    # A registry instance per thread, as separate processes would each open one.
    failures = at_once(lambda version: open_registry().promote(version), versions)
    assert failures == []
    history = setup.history()
    assert sorted(change.after.production for change in history) == sorted(versions)
    # Each promotion saw the one before it: none was applied to a stale index.
    befores = [change.before.production for change in history[1:]]
    assert befores == [change.after.production for change in history[:-1]]


def test_a_tampered_artifact_fails_verification_and_is_never_promoted(registry):
    good = register(registry, fitted()).version
    bad = register(registry, fitted("random_forest")).version
    registry.promote(good)
    overwrite(registry, bad, "model.skops", b"not the registered bytes")
    with pytest.raises(ModelIntegrityError, match="corrupt or truncated"):
        registry.verify(bad)
    with pytest.raises(ModelIntegrityError, match=bad):
        registry.promote(bad)
    assert registry.aliases().production == good


def test_a_pin_holds_production_until_unpinned(registry):
    first = register(registry, fitted()).version
    second = register(registry, fitted("random_forest")).version
    registry.promote(first)
    registry.pin(reason="test: hold")
    with pytest.raises(PinnedError):
        registry.promote(second)
    registry.unpin(reason="test: release")
    registry.promote(second)
    assert registry.aliases().production == second


def test_reports_attached_later_are_hashed_and_linked_where_the_registry_is(registry):
    version = register(registry, fitted()).version
    registry.attach(version, {"report.html": b"<html>gate</html>"})
    assert registry.read_file(version, "report.html") == b"<html>gate</html>"
    hashes = json.loads(registry.read_file(version, "metadata.json"))["files"]
    assert hashes["report.html"] == sha256_bytes(b"<html>gate</html>")
    url = registry.file_url(version, "report.html")
    expected = "s3://" if isinstance(registry.store, S3RegistryStore) else "file://"
    assert url.startswith(expected) and url.endswith(f"/{version}/report.html")
    assert registry.has_file(version, "report.html")
    assert not registry.has_file(version, "model_card.md")


def test_every_alias_move_changes_the_stamp_a_server_watches(registry):
    first = register(registry, fitted()).version
    before = registry.store.change_stamp()
    registry.promote(first)
    after = registry.store.change_stamp()
    assert after is not None and after != before
    assert registry.store.change_stamp() == after  # unchanged while nothing moves
