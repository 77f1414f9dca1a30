"""An embedded model registry: content-addressed model versions and production aliases.

No server: a directory is the registry, so the pipeline, the CLI and a scoring job on
the same machine share it, and a backup is a copy of the directory.  The files, and how
they are written so that no reader sees half of one, are in ``registry_store``; the same
registry may live under an ``s3://bucket/prefix`` instead (``registry_s3``), where
conditional writes replace the rename and the file lock.  Everything here goes through
the store, so both behave alike.

A version id is ``v<created UTC %Y%m%dT%H%M%S>-<first 12 hex digits of the artifact's
sha256>``: it sorts by time for a person reading a listing, and names the exact bytes
(skops files embed timestamps, so the hash alone would not deduplicate retrained models).

Every alias move first loads the target through ``load``, which checks the artifact's
hash against its metadata and the index, its scikit-learn version and its types: a
model that could not be served never becomes production.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from training_pipeline.ml import artifacts, provenance
from training_pipeline.ml import registry_store as store
from training_pipeline.ml.artifacts import ModelIntegrityError, RegistryError
from training_pipeline.ml.problem import ProblemSpec
from training_pipeline.ml.registry_aliases import (
    AUTOMATIC_ROLLBACK,
    PROMOTED,
    ROLLBACK,
    AliasError,
    AliasMoves,
    PinnedError,
    timestamp,
)
from training_pipeline.ml.registry_local import (
    LocalRegistryStore,
    RegistryStore,
    legacy_layout_message,
)
from training_pipeline.ml.registry_s3 import S3RegistryStore
from training_pipeline.ml.registry_store import (
    FORMAT,
    METADATA_FILE,
    MODEL_FILE,
    AliasChange,
    Aliases,
    Decision,
    ModelVersion,
    UnknownVersionError,
)

__all__ = [  # the registry's names, importable from here as before the split
    "AUTOMATIC_ROLLBACK",
    "PROMOTED",
    "ROLLBACK",
    "AliasChange",
    "AliasError",
    "Aliases",
    "Decision",
    "LegacyLayoutError",
    "ModelRegistry",
    "ModelVersion",
    "PinnedError",
    "UnknownVersionError",
]


class LegacyLayoutError(RegistryError):
    """The models folder still holds the one-model registry of earlier releases
    (``registry_local.legacy_layout_message``)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class ModelRegistry(AliasMoves):
    """The registry rooted at ``root`` (a folder, or a store such as ``S3RegistryStore``);
    nothing is created until the first write.

    Versions are registered and loaded here; production moves in ``AliasMoves``.
    """

    def __init__(
        self, root: Path | RegistryStore, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        if isinstance(root, str) and "://" in root:
            raise RegistryError(f"{root!r} is a URL: open it with ModelRegistry.for_model")
        self.store = LocalRegistryStore(root) if isinstance(root, str | Path) else root
        self.root = self.store.root
        self._clock = clock

    @classmethod
    def for_model(
        cls, models_dir: Path | str, name: str, *, fs: Any = None, **kwargs: Any
    ) -> ModelRegistry:
        """The registry of the model ``name``: ``<models_dir>/<name>/``; ``models_dir`` may
        be an ``s3://bucket/prefix``, reached through the s3fs filesystem ``fs``.

        Raises:
            LegacyLayoutError: ``models_dir`` itself holds a registry (the layout before
                models were declared by name); it is not moved silently, the message
                says how to move it.
        """
        if str(models_dir).startswith("s3://"):
            if fs is None:
                raise RegistryError(f"the registry {models_dir} is on S3: give its filesystem")
            return cls(S3RegistryStore(f"{str(models_dir).rstrip('/')}/{name}", fs), **kwargs)
        models_dir = Path(models_dir)
        if (legacy := legacy_layout_message(models_dir, name)) is not None:
            raise LegacyLayoutError(legacy)
        return cls(models_dir / name, **kwargs)

    # Reading: no lock; the index is replaced atomically, so any read is consistent.

    def versions(self) -> list[ModelVersion]:
        """Every registered version, newest first."""
        summaries = self._read_index()["versions"].values()
        ordered = sorted(summaries, key=lambda s: (s["created_at"], s["version"]), reverse=True)
        return [self._from_summary(summary) for summary in ordered]

    def get(self, version: str) -> ModelVersion:
        return self._from_summary(self._summary(self._read_index(), version))

    def production(self) -> ModelVersion | None:
        current = self.aliases().production
        return None if current is None else self.get(current)

    def metadata(self, version: str) -> dict[str, Any]:
        """The version's ``metadata.json``; ``ModelIntegrityError`` if missing or unreadable."""
        return self._read_metadata(version, self._summary(self._read_index(), version)["sha256"])

    def verify(self, version: str) -> str:
        """Check ``version`` can be served without rebuilding it: its metadata agrees
        with the index, it was written by the installed scikit-learn major.minor, and its
        artifact's bytes hash to the registered sha256 (one flipped byte fails).

        Returns:
            The verified sha256.

        Raises:
            UnknownVersionError, ModelIntegrityError, IncompatibleModelError: as ``load``.
        """
        expected = self._metadata_checked(version)
        data, path = self._artifact(version, expected)
        if (actual := artifacts.sha256_bytes(data)) != expected:
            what = "artifact is corrupt or truncated:"
            raise ModelIntegrityError(version, path, expected, actual, what)
        return expected

    def load(self, version: str) -> Any:
        """The fitted pipeline of ``version``, verified before a single object is rebuilt.

        Raises:
            UnknownVersionError: The index does not list ``version``.
            ModelIntegrityError: Artifact or metadata missing, or a hash differs.
            IncompatibleModelError: Written by another scikit-learn major.minor.
            UntrustedArtifactError: The file names a type outside the allowlist.
        """
        expected = self._metadata_checked(version)
        data, path = self._artifact(version, expected)
        return artifacts.model_from_bytes(data, path, version=version, expected_sha256=expected)

    def read_file(self, version: str, name: str) -> bytes:
        """A file stored with ``version`` (report, training set ...); ``FileNotFoundError``
        if it has none of that name."""
        return self.store.read_file(version, name)

    def has_file(self, version: str, name: str) -> bool:
        return self.store.exists(version, name)

    def file_location(self, version: str, name: str) -> Path | str:
        """Where a person finds the file: a path, or an ``s3://`` URI."""
        return self.store.location(version, name)

    def file_url(self, version: str, name: str) -> str:
        """A link to the file: ``file://`` locally, ``s3://`` on S3."""
        return self.store.url(version, name)

    @property
    def name(self) -> str:
        """The model's name: the last part of the registry's root."""
        return str(self.root).rstrip("/").rsplit("/", 1)[-1]

    # Writing: each change is one read-modify-replace of the index under the writer lock.

    def register(
        self,
        model: Any,
        *,
        family: str,
        params: Mapping[str, Any],
        metrics: Mapping[str, Any],
        problem: ProblemSpec,
        data_fingerprint: str,
        trained_on: Sequence[str],
        extra_files: Mapping[str, Path | bytes] | None = None,
    ) -> ModelVersion:
        """Store a fitted model with its provenance and list it in the index.

        Args:
            model: The fitted pipeline; refused (``UntrustedArtifactError``) before
                anything is written if it contains a type outside the allowlist.
            family, params, metrics: What was trained and how well it scored.
            problem: The problem the model solves, with the feature roles it saw.
            data_fingerprint: Identifies the exact training data.
            trained_on: The raw batches or files behind that data.
            extra_files: File name -> a file to copy or the bytes to write, e.g.
                ``{"report.html": path}``.

        Returns:
            The new version (not promoted).
        """
        data = artifacts.serialize_model(model)
        sha256 = artifacts.sha256_bytes(data)
        created = self._clock()
        version = f"v{created.astimezone(UTC):%Y%m%dT%H%M%S}-{sha256[:12]}"
        metadata = {
            "format": FORMAT,
            "version": version,
            "sha256": sha256,
            "artifact": MODEL_FILE,
            "family": family,
            "params": dict(params),
            "metrics": dict(metrics),
            "problem": problem.to_dict(),
            "data_fingerprint": data_fingerprint,
            "trained_on": list(trained_on),
            "code_version": provenance.code_version(),
            "library_versions": provenance.library_versions(),
            "created_at": timestamp(created),
            "files": {},
        }
        self.store.publish_version(version, data, metadata, extra_files or {})
        summary = {key: metadata[key] for key in ("version", "sha256", "family", "created_at")}
        summary |= {key: metadata[key] for key in ("metrics", "trained_on", "data_fingerprint")}
        summary["code_version"] = metadata["code_version"]
        summary["gate"] = None
        self.store.update_index(lambda index: index["versions"].__setitem__(version, summary))
        return self.get(version)

    def record_gate(self, version: str, decision: Mapping[str, Any]) -> ModelVersion:
        """Attach a promotion gate's decision to ``version`` (replacing an earlier one)."""
        gate = {"recorded_at": timestamp(self._clock()), "decision": dict(decision)}

        def attach(index: dict[str, Any]) -> None:
            self._summary(index, version)["gate"] = gate

        self.store.update_index(attach)
        return self.get(version)

    def attach(self, version: str, files: Mapping[str, bytes]) -> dict[str, Path | str]:
        """Store reports written after registration (validation report, model card);
        returns where each one is (``file_location``)."""

        def write(index: dict[str, Any]) -> None:
            self._summary(index, version)
            self.store.attach_files(version, files)

        self.store.update_index(write)
        return {name: self.file_location(version, name) for name in files}

    # Internals

    def _from_summary(self, summary: Mapping[str, Any]) -> ModelVersion:
        return ModelVersion.from_summary(summary, str(self.store.location(summary["version"])))

    @staticmethod
    def _summary(index: Mapping[str, Any], version: str) -> dict[str, Any]:
        return store.summary_of(index, version)

    def _read_index(self) -> dict[str, Any]:
        return self.store.read_index()

    def _artifact(self, version: str, expected: str) -> tuple[bytes, Path | str]:
        """The artifact's bytes and where they were read; ``ModelIntegrityError`` if missing."""
        path = self.store.location(version, MODEL_FILE)
        try:
            return self.store.read_file(version, MODEL_FILE), path
        except FileNotFoundError:
            what = "artifact is missing:"
            raise ModelIntegrityError(version, path, expected, "missing", what) from None

    def _metadata_checked(self, version: str) -> str:
        """The registered sha256, once the metadata agrees with it and with scikit-learn."""
        expected = self._summary(self._read_index(), version)["sha256"]
        metadata = self._read_metadata(version, expected)
        if metadata.get("sha256") != expected:
            path = self.store.location(version, METADATA_FILE)
            what = "the index and metadata disagree on the artifact's hash:"
            raise ModelIntegrityError(version, path, expected, str(metadata.get("sha256")), what)
        artifacts.check_sklearn_version(
            version,
            str(metadata.get("library_versions", {}).get("scikit-learn", "unrecorded")),
            provenance.installed_sklearn_version(),
        )
        return expected

    def _read_metadata(self, version: str, expected_sha256: str) -> dict[str, Any]:
        path = self.store.location(version, METADATA_FILE)
        try:
            return json.loads(self.store.read_file(version, METADATA_FILE))
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError) as error:
            what = f"metadata is missing or unreadable ({error}):"
            raise ModelIntegrityError(version, path, expected_sha256, "unknown", what) from error
