"""The registry's index and versions on S3 (moto): conditional writes keep every change
of concurrent writers, versions are written once, readers never see half an index."""

from __future__ import annotations

import json

import pytest
from at_once import at_once

from training_pipeline.ml.artifacts import RegistryError, sha256_bytes
from training_pipeline.ml.registry_s3 import S3RegistryStore
from training_pipeline.ml.registry_store import empty_index

pytestmark = pytest.mark.integration  # a registry in a local S3 server


def store_in(s3_bucket, attempts: int = 50) -> S3RegistryStore:
    bucket, fs = s3_bucket
    return S3RegistryStore(f"s3://{bucket}/models/churn", fs, attempts=attempts)


def test_a_registry_never_written_reads_as_the_empty_index(s3_bucket):
    assert store_in(s3_bucket).read_generation() == (0, empty_index())


def test_concurrent_promotions_each_land_in_the_index_none_lost(s3_bucket):
    store = store_in(s3_bucket, attempts=200)
    promotions = [f"v{i:02d}" for i in range(12)]

    def promote(version: str) -> None:
        def change(index: dict) -> None:
            before = index["aliases"]["production"]
            index["aliases"] = {"production": version, "previous_production": before}
            index["history"].append({"action": "promote", "after": version, "before": before})

        store.update_index(change)

    assert at_once(promote, promotions) == []
    generation, index = store.read_generation()
    assert generation == len(promotions)
    history = index["history"]
    assert sorted(entry["after"] for entry in history) == promotions
    # Each promotion saw the one before it: a chain, no change applied to a stale index.
    assert [entry["before"] for entry in history[1:]] == [e["after"] for e in history[:-1]]
    assert index["aliases"]["production"] == history[-1]["after"]


def test_a_writer_that_keeps_losing_the_race_gives_up_with_an_error(s3_bucket):
    store = store_in(s3_bucket, attempts=1)
    rival = store_in(s3_bucket)

    def change_after_a_rival_wrote(index: dict) -> None:
        rival.update_index(lambda other: other["history"].append({"action": "pin"}))

    with pytest.raises(RegistryError, match="changed under 1 attempts"):
        store.update_index(change_after_a_rival_wrote)
    assert store.read_generation()[1]["history"] == [{"action": "pin"}]


def test_a_failed_change_publishes_nothing(s3_bucket):
    store = store_in(s3_bucket)

    def refuse(index: dict) -> None:
        index["aliases"]["production"] = "half-done"
        raise RegistryError("refused")

    with pytest.raises(RegistryError, match="refused"):
        store.update_index(refuse)
    assert store.read_generation() == (0, empty_index())


def test_a_version_is_written_once_with_its_files_hashed_in_its_metadata(s3_bucket):
    store = store_in(s3_bucket)
    store.publish_version("v1", b"model", {"sha256": sha256_bytes(b"model")}, {"card.md": b"#"})
    assert store.read_file("v1", "model.skops") == b"model"
    metadata = json.loads(store.read_file("v1", "metadata.json"))
    assert metadata["files"] == {"card.md": sha256_bytes(b"#")}
    with pytest.raises(RegistryError, match="already exists"):
        store.publish_version("v1", b"other", {}, {})
    assert store.read_file("v1", "model.skops") == b"model"


def test_a_root_that_is_not_on_s3_is_refused(s3_bucket):
    with pytest.raises(RegistryError, match="s3://"):
        S3RegistryStore("/tmp/models", s3_bucket[1])
