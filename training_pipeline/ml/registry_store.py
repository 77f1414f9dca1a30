"""The registry's files: the index and version directories, written so no reader sees half.

Layout under the registry root::

    registry.json                  the index (see ``empty_index`` for its shape)
    .registry.lock                 serializes writers; readers never take it
    versions/<version>/model.skops     the artifact
    versions/<version>/metadata.json   its hash and provenance
    versions/<version>/<extra files>   e.g. report.html, model_card.md

The index is only ever replaced whole (``artifacts.atomic_write_json``) while holding
the lock, so concurrent writers cannot lose each other's changes and a reader sees the
old index or the new one.  A version directory is filled under a temporary name and
renamed into place, so it appears complete or not at all.  A crash between publishing a
directory and listing it in the index leaves an unlisted directory, which is ignored.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from training_pipeline.ml import artifacts
from training_pipeline.ml.artifacts import RegistryError

INDEX_FILE, LOCK_FILE, VERSIONS_DIR = "registry.json", ".registry.lock", "versions"
MODEL_FILE, METADATA_FILE = "model.skops", "metadata.json"
FORMAT = 1
T = TypeVar("T")


class UnknownVersionError(RegistryError):
    """A version id that the index does not list."""


@dataclass(frozen=True)
class Aliases:
    production: str | None
    previous_production: str | None


@dataclass(frozen=True)
class AliasChange:
    """One entry of the alias history: who moved which alias, when and why."""

    action: str  # "promote", "rollback", "withdraw", "pin" or "unpin"
    reason: str
    actor: str
    at: str
    before: Aliases
    after: Aliases

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> AliasChange:
        fields = {**entry, "before": Aliases(**entry["before"]), "after": Aliases(**entry["after"])}
        return cls(**fields)


@dataclass(frozen=True)
class Decision:
    """Who decided something about a version or the aliases, when and why: a rejection
    (the version is never promoted automatically) or a pin (nothing is)."""

    actor: str
    at: str
    reason: str
    version: str | None = None  # a pin: the production version it holds

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any] | None) -> Decision | None:
        return None if entry is None else cls(**entry)


@dataclass(frozen=True)
class ModelVersion:
    """A registered version as the index summarizes it; ``metadata()`` has the rest."""

    version: str
    sha256: str
    family: str
    created_at: str
    metrics: Mapping[str, Any]
    trained_on: tuple[str, ...]
    data_fingerprint: str
    code_version: str
    location: str  # the version's folder: a local path or an s3:// URI
    gate: Mapping[str, Any] | None
    gate_recorded_at: str | None
    rejected: Decision | None = None

    @property
    def directory(self) -> Path:
        """The version's local folder; an S3 registry's files are read through it."""
        if self.location.startswith("s3://"):
            raise RegistryError(
                f"version {self.version} is on S3 ({self.location}), not in a local folder: "
                "read its files through ModelRegistry.read_file"
            )
        return Path(self.location)

    @property
    def artifact_path(self) -> Path:
        return self.directory / MODEL_FILE

    @property
    def metadata_path(self) -> Path:
        return self.directory / METADATA_FILE

    @classmethod
    def from_summary(cls, summary: Mapping[str, Any], location: str) -> ModelVersion:
        gate = summary.get("gate") or {}
        return cls(
            version=summary["version"],
            sha256=summary["sha256"],
            family=summary["family"],
            created_at=summary["created_at"],
            metrics=summary["metrics"],
            trained_on=tuple(summary["trained_on"]),
            data_fingerprint=summary["data_fingerprint"],
            code_version=summary["code_version"],
            location=location,
            gate=gate.get("decision"),
            gate_recorded_at=gate.get("recorded_at"),
            rejected=Decision.from_dict(summary.get("rejected")),
        )


def empty_index() -> dict[str, Any]:
    """The index of a registry with nothing in it.

    ``versions`` maps a version id to its summary (version, sha256, family, created_at,
    metrics, trained_on, data_fingerprint, code_version, gate and, once rolled back from,
    rejected); ``history`` lists every alias change, oldest first; ``pin``, when present,
    holds production where it is.  Indexes written before rejections and pins existed
    lack those keys and read the same.
    """
    aliases = {"production": None, "previous_production": None}
    return {"format": FORMAT, "aliases": aliases, "versions": {}, "history": []}


def read_index(root: Path) -> dict[str, Any]:
    """The current index; an empty one if the registry has never been written."""
    path = root / INDEX_FILE
    try:
        index = json.loads(path.read_bytes())
    except FileNotFoundError:
        return empty_index()
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RegistryError(f"the registry index {path} is not valid JSON: {error}") from error
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise RegistryError(f"{path} is not a registry index of format {FORMAT}")
    return index


def update_index(root: Path, change: Callable[[dict[str, Any]], T]) -> T:
    """Apply ``change`` to the index in place and replace the file, under the writer lock.

    If ``change`` raises, nothing is written.
    """
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        index = read_index(root)
        result = change(index)
        artifacts.atomic_write_json(root / INDEX_FILE, index)
    return result


def summary_of(index: Mapping[str, Any], version: str) -> dict[str, Any]:
    """The index's summary of ``version``; ``UnknownVersionError`` if it lists none."""
    try:
        return index["versions"][version]
    except KeyError:
        raise UnknownVersionError(f"unknown model version {version!r}") from None


def version_directory(root: Path, version: str) -> Path:
    return root / VERSIONS_DIR / version


def publish_version(
    root: Path,
    version: str,
    model_bytes: bytes,
    metadata: dict[str, Any],
    extra_files: Mapping[str, Path | bytes],
) -> None:
    """Write a version's artifact, extra files and metadata, then rename them into place.

    The sha256 of each extra file is added to ``metadata["files"]`` before it is written.
    """
    versions_dir = root / VERSIONS_DIR
    final = versions_dir / version
    if final.exists():
        raise RegistryError(f"version directory {final} already exists")
    for name in extra_files:
        if not name or name in (MODEL_FILE, METADATA_FILE) or Path(name).name != name:
            raise RegistryError(f"cannot store an extra file named {name!r}")
    versions_dir.mkdir(parents=True, exist_ok=True)
    staging = versions_dir / f".staging-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        artifacts.write_durably(staging / MODEL_FILE, model_bytes)
        for name, content in extra_files.items():
            payload = content.read_bytes() if isinstance(content, Path) else content
            artifacts.write_durably(staging / name, payload)
            metadata["files"][name] = artifacts.sha256_bytes(payload)
        artifacts.write_durably(staging / METADATA_FILE, artifacts.to_json_bytes(metadata))
        artifacts.fsync_directory(staging)
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    artifacts.fsync_directory(versions_dir)


def attach_files(root: Path, version: str, files: Mapping[str, bytes]) -> dict[str, str]:
    """Add (or replace) report files beside a published version, and list their hashes.

    Called under the index lock; the artifact and metadata.json itself cannot be
    replaced this way.  Returns the sha256 of each file written.
    """
    directory = version_directory(root, version)
    for name in files:
        if not name or name in (MODEL_FILE, METADATA_FILE) or Path(name).name != name:
            raise RegistryError(f"cannot attach a file named {name!r}")
    hashes = {name: artifacts.sha256_bytes(payload) for name, payload in files.items()}
    metadata = json.loads((directory / METADATA_FILE).read_bytes())
    metadata["files"] = metadata.get("files", {}) | hashes
    contents = {**files, METADATA_FILE: artifacts.to_json_bytes(metadata)}
    # Every file is written in full before any is renamed into place, so a full disk
    # leaves the old files and the old metadata, never a report its hash does not match.
    staged: list[tuple[Path, Path]] = []
    try:
        for name, payload in contents.items():
            staged.append((artifacts.write_temporary(directory / name, payload), directory / name))
    except BaseException:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
        raise
    for temporary, final in staged:
        os.replace(temporary, final)
    artifacts.fsync_directory(directory)
    return hashes
