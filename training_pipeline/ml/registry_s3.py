"""The registry's files on S3 (``s3://bucket/prefix``), with the local registry's guarantees.

S3 has neither a rename nor a file lock, the two things ``registry_store`` builds on.
Both are replaced by one primitive, the conditional write ``If-None-Match: *`` (create
the object only if no object has that key; AWS S3 since 2024, MinIO and moto too):

- The index is a log of immutable generations, ``index/<generation>.json``.  A writer
  reads the newest generation N, applies its change and creates N+1 conditionally; if
  another writer created N+1 first, the write is refused (412) and the writer re-reads
  and re-applies its change.  So concurrent writers never lose each other's changes
  (compare-and-swap), and a reader, which reads the newest generation whole, sees the
  old index or the new one, never half of one.  A lock row in Postgres would serialise
  writers too, but would make a second system (and its credentials) a dependency of
  every read-modify-write, and a crashed holder would have to be detected; the
  conditional write needs only the bucket and leaves nothing held.
- A version's objects are each created conditionally (a version id is written once),
  ``metadata.json`` last, and the version is listed in the index only after all of
  them exist: an unlisted, partly written version is ignored, as locally.

Listing a prefix is strongly consistent on S3, so the newest generation is always seen.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from training_pipeline.ml import artifacts
from training_pipeline.ml.artifacts import RegistryError
from training_pipeline.ml.registry_store import (
    FORMAT,
    METADATA_FILE,
    MODEL_FILE,
    VERSIONS_DIR,
    empty_index,
)

INDEX_DIR = "index"
GENERATION_DIGITS = 12  # zero-padded, so listing order is generation order
T = TypeVar("T")


class S3RegistryStore:
    """The index and version objects of one registry under ``root`` (``s3://bucket/p``).

    ``fs`` is an ``s3fs.S3FileSystem``; ``attempts`` bounds how often a writer that lost
    the race for a generation tries again before giving up with an error.
    """

    def __init__(self, root: str, fs: Any, attempts: int = 50) -> None:
        if not root.startswith("s3://"):
            raise RegistryError(f"an S3 registry root must start with s3://, not {root!r}")
        self.root, self.fs, self.attempts = root.rstrip("/"), fs, attempts

    def _generations(self) -> list[str]:
        try:
            names = self.fs.ls(f"{self.root}/{INDEX_DIR}", detail=False, refresh=True)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if n.rsplit("/", 1)[-1].split(".")[0].isdigit())

    def describe(self) -> str:
        return self.root

    def read_index(self) -> dict[str, Any]:
        return self.read_generation()[1]

    def change_stamp(self) -> str | None:
        """The newest generation's key: every index change publishes a new one."""
        generations = self._generations()
        return generations[-1] if generations else None

    def read_generation(self) -> tuple[int, dict[str, Any]]:
        """The newest generation number (0: never written) and its index."""
        generations = self._generations()
        if not generations:
            return 0, empty_index()
        newest = generations[-1]
        index = json.loads(self.fs.cat_file(newest))
        if not isinstance(index, dict) or index.get("format") != FORMAT:
            raise RegistryError(f"s3://{newest} is not a registry index of format {FORMAT}")
        return int(newest.rsplit("/", 1)[-1].split(".")[0]), index

    def update_index(self, change: Callable[[dict[str, Any]], T]) -> T:
        """Apply ``change`` to the newest index and publish it as the next generation;
        on a lost race, re-read and apply ``change`` again.  If ``change`` raises,
        nothing is written."""
        for _ in range(self.attempts):
            generation, index = self.read_generation()
            result = change(index)
            key = f"{self.root}/{INDEX_DIR}/{generation + 1:0{GENERATION_DIGITS}d}.json"
            try:
                self.fs.pipe_file(key, artifacts.to_json_bytes(index), mode="create")
            except FileExistsError:
                continue  # another writer published this generation first
            return result
        raise RegistryError(
            f"the registry index at {self.root} changed under {self.attempts} attempts in a "
            "row; too many writers at once, try again"
        )

    def publish_version(
        self,
        version: str,
        model_bytes: bytes,
        metadata: dict[str, Any],
        extra_files: Mapping[str, Path | bytes],
    ) -> None:
        """Create the version's objects, ``metadata.json`` (with each extra file's
        sha256) last; refused if any of them exists already."""
        for name in extra_files:
            if not name or name in (MODEL_FILE, METADATA_FILE) or "/" in name:
                raise RegistryError(f"cannot store an extra file named {name!r}")
        payloads = {
            name: content.read_bytes() if isinstance(content, Path) else content
            for name, content in extra_files.items()
        }
        metadata["files"] = metadata.get("files", {}) | {
            name: artifacts.sha256_bytes(payload) for name, payload in payloads.items()
        }
        objects = {MODEL_FILE: model_bytes, **payloads}
        objects[METADATA_FILE] = artifacts.to_json_bytes(metadata)
        for name, payload in objects.items():
            key = self.key_of(version, name)
            try:
                self.fs.pipe_file(key, payload, mode="create")
            except FileExistsError:
                raise RegistryError(f"version object {key} already exists") from None

    def attach_files(self, version: str, files: Mapping[str, bytes]) -> dict[str, str]:
        """Add (or replace) report files beside a published version; called inside
        ``update_index``.  The reports are written before ``metadata.json`` lists their
        hashes, so a hash listed is never of a report not yet there; the artifact and
        metadata.json itself cannot be replaced this way."""
        for name in files:
            if not name or name in (MODEL_FILE, METADATA_FILE) or "/" in name:
                raise RegistryError(f"cannot attach a file named {name!r}")
        hashes = {name: artifacts.sha256_bytes(payload) for name, payload in files.items()}
        metadata = json.loads(self.read_file(version, METADATA_FILE))
        metadata["files"] = metadata.get("files", {}) | hashes
        for name, payload in files.items():
            self.fs.pipe_file(self.key_of(version, name), payload)
        self.fs.pipe_file(self.key_of(version, METADATA_FILE), artifacts.to_json_bytes(metadata))
        return hashes

    def key_of(self, version: str, name: str) -> str:
        return f"{self.root}/{VERSIONS_DIR}/{version}/{name}"

    def read_file(self, version: str, name: str) -> bytes:
        """The object's bytes; ``FileNotFoundError`` if the version has no such file."""
        return self.fs.cat_file(self.key_of(version, name))

    def location(self, version: str, name: str = "") -> str:
        return self.key_of(version, name).rstrip("/")

    def url(self, version: str, name: str) -> str:
        return self.key_of(version, name)

    def exists(self, version: str, name: str) -> bool:
        return bool(self.fs.exists(self.key_of(version, name)))
