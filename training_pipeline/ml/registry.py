"""An embedded model registry: content-addressed model versions and production aliases.

No server: a directory is the registry, so the pipeline, the CLI and a scoring job on
the same machine share it, and a backup is a copy of the directory.  The files, and how
they are written so that no reader sees half of one, are in ``registry_store``.

A version id is ``v<created UTC %Y%m%dT%H%M%S>-<first 12 hex digits of the artifact's
sha256>``: it sorts by time for a person reading a listing, and names the exact bytes
(skops files embed timestamps, so the hash alone would not deduplicate retrained models).

Every alias move first loads the target through ``load``, which checks the artifact's
hash against its metadata and the index, its scikit-learn version and its types: a
model that could not be served never becomes production.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from training_pipeline.ml import artifacts, provenance
from training_pipeline.ml import registry_store as store
from training_pipeline.ml.artifacts import ModelIntegrityError, RegistryError
from training_pipeline.ml.problem import ProblemSpec
from training_pipeline.ml.registry_store import (
    FORMAT,
    METADATA_FILE,
    MODEL_FILE,
    AliasChange,
    Aliases,
    ModelVersion,
)

HISTORY_LIMIT = 50
PROMOTED, ROLLBACK = "promoted", "rollback"
AUTOMATIC_ROLLBACK = "automatic rollback after failed smoke test"


class UnknownVersionError(RegistryError):
    """A version id that the index does not list."""


class LegacyLayoutError(RegistryError):
    """The models folder still holds the one-model registry of earlier releases."""


class AliasError(RegistryError):
    """An alias move that makes no sense now: nothing to roll back, already production..."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class ModelRegistry:
    """The registry rooted at ``root``; nothing is created on disk until the first write."""

    def __init__(self, root: Path, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.root = Path(root)
        self._clock = clock

    @classmethod
    def for_model(cls, models_dir: Path, name: str, **kwargs: Any) -> ModelRegistry:
        """The registry of the model ``name``: ``<models_dir>/<name>/``.

        Raises:
            LegacyLayoutError: ``models_dir`` itself holds a registry (the layout before
                models were declared by name); it is not moved silently, the message
                says how to move it.
        """
        models_dir = Path(models_dir)
        legacy = models_dir / store.INDEX_FILE
        if legacy.exists():
            target = shlex.quote(str(models_dir / name))
            moved = " ".join(
                shlex.quote(str(models_dir / part))
                for part in (store.INDEX_FILE, store.VERSIONS_DIR, store.LOCK_FILE)
                if (models_dir / part).exists()
            )
            raise LegacyLayoutError(
                f"{legacy} is a registry in the old one-model layout; each model now has "
                f"its own folder {models_dir}/<model>/. Nothing was moved: stop the "
                f"pipeline and move it with `mkdir -p {target} && mv {moved} {target}/`"
            )
        return cls(models_dir / name, **kwargs)

    # Reading: no lock; the index is replaced atomically, so any read is consistent.

    def versions(self) -> list[ModelVersion]:
        """Every registered version, newest first."""
        summaries = self._read_index()["versions"].values()
        ordered = sorted(summaries, key=lambda s: (s["created_at"], s["version"]), reverse=True)
        return [self._from_summary(summary) for summary in ordered]

    def get(self, version: str) -> ModelVersion:
        return self._from_summary(self._summary(self._read_index(), version))

    def aliases(self) -> Aliases:
        return Aliases(**self._read_index()["aliases"])

    def production(self) -> ModelVersion | None:
        current = self.aliases().production
        return None if current is None else self.get(current)

    def history(self) -> list[AliasChange]:
        """Alias changes, oldest first (the last ``HISTORY_LIMIT``)."""
        return [AliasChange.from_dict(entry) for entry in self._read_index()["history"]]

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
        path = self._directory(version) / MODEL_FILE
        try:
            actual = artifacts.sha256_file(path)
        except FileNotFoundError:
            what = "artifact is missing:"
            raise ModelIntegrityError(version, path, expected, "missing", what) from None
        if actual != expected:
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
        path = self._directory(version) / MODEL_FILE
        return artifacts.read_model(path, version=version, expected_sha256=expected)

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
            "created_at": _timestamp(created),
            "files": {},
        }
        store.publish_version(self.root, version, data, metadata, extra_files or {})
        summary = {key: metadata[key] for key in ("version", "sha256", "family", "created_at")}
        summary |= {key: metadata[key] for key in ("metrics", "trained_on", "data_fingerprint")}
        summary["code_version"] = metadata["code_version"]
        summary["gate"] = None
        store.update_index(self.root, lambda index: index["versions"].__setitem__(version, summary))
        return self.get(version)

    def record_gate(self, version: str, decision: Mapping[str, Any]) -> ModelVersion:
        """Attach a promotion gate's decision to ``version`` (replacing an earlier one)."""
        gate = {"recorded_at": _timestamp(self._clock()), "decision": dict(decision)}

        def attach(index: dict[str, Any]) -> None:
            self._summary(index, version)["gate"] = gate

        store.update_index(self.root, attach)
        return self.get(version)

    def attach(self, version: str, files: Mapping[str, bytes]) -> dict[str, Path]:
        """Store reports written after registration (validation report, model card)."""

        def write(index: dict[str, Any]) -> None:
            self._summary(index, version)
            store.attach_files(self.root, version, files)

        store.update_index(self.root, write)
        return {name: self._directory(version) / name for name in files}

    def promote(
        self, version: str, reason: str = PROMOTED, actor: str | None = None
    ) -> AliasChange:
        """Make ``version`` production and the current production previous_production."""
        self.load(version)

        def move(index: dict[str, Any]) -> AliasChange:
            self._summary(index, version)
            before = Aliases(**index["aliases"])
            if before.production == version:
                raise AliasError(f"{version} is already in production")
            after = Aliases(production=version, previous_production=before.production)
            return self._move(index, "promote", before, after, reason, actor)

        return store.update_index(self.root, move)

    def rollback(
        self,
        to: str | None = None,
        reason: str = ROLLBACK,
        actor: str | None = None,
        *,
        replacing: str | None = None,
    ) -> AliasChange:
        """Put previous_production (or the version ``to``) back into production.

        The target must load, exactly as for ``promote``.  Afterwards previous_production
        is empty: the version rolled back from was withdrawn for a reason, so a second
        ``rollback`` must never bring it back by accident (name it with ``to`` instead).
        ``replacing`` names the production version the caller judged: if production is
        another one by now (a concurrent run promoted it), nothing is done.
        """
        seen = self.aliases()
        if seen.production is None:
            raise AliasError("there is no production model to roll back")
        if replacing is not None and seen.production != replacing:
            raise AliasError(
                f"production is {seen.production}, no longer {replacing}; nothing was done"
            )
        target = to if to is not None else seen.previous_production
        if target is None:
            raise AliasError(
                f"production is {seen.production} and there is no previous production "
                "version to roll back to; name the version to restore"
            )
        if target == seen.production:
            raise AliasError(f"{target} is already in production")
        self.load(target)

        def move(index: dict[str, Any]) -> AliasChange:
            before = Aliases(**index["aliases"])
            if before != seen:
                raise AliasError(f"the aliases changed meanwhile ({before}); nothing was done")
            return self._move(index, "rollback", before, Aliases(target, None), reason, actor)

        return store.update_index(self.root, move)

    def revert(self, change: AliasChange, reason: str, actor: str | None = None) -> AliasChange:
        """Restore both aliases exactly as they were before ``change``.

        Refused if the aliases moved since ``change``; the production restored, if any,
        must load.  Used to undo a promotion whose smoke test failed.
        """
        if change.before.production is not None:
            self.load(change.before.production)

        def move(index: dict[str, Any]) -> AliasChange:
            before = Aliases(**index["aliases"])
            if before != change.after:
                raise AliasError(f"the aliases changed since {change.at} ({before}); not reverted")
            return self._move(index, "rollback", before, change.before, reason, actor)

        return store.update_index(self.root, move)

    def withdraw(self, version: str, reason: str, actor: str | None = None) -> AliasChange:
        """Leave production empty rather than serve ``version``; previous_production stays."""

        def move(index: dict[str, Any]) -> AliasChange:
            before = Aliases(**index["aliases"])
            if before.production != version:
                raise AliasError(f"{version} is not in production ({before})")
            after = Aliases(None, before.previous_production)
            return self._move(index, "withdraw", before, after, reason, actor)

        return store.update_index(self.root, move)

    # Internals

    def _directory(self, version: str) -> Path:
        return store.version_directory(self.root, version)

    def _from_summary(self, summary: Mapping[str, Any]) -> ModelVersion:
        return ModelVersion.from_summary(summary, self._directory(summary["version"]))

    @staticmethod
    def _summary(index: Mapping[str, Any], version: str) -> dict[str, Any]:
        try:
            return index["versions"][version]
        except KeyError:
            raise UnknownVersionError(f"unknown model version {version!r}") from None

    def _read_index(self) -> dict[str, Any]:
        return store.read_index(self.root)

    def _metadata_checked(self, version: str) -> str:
        """The registered sha256, once the metadata agrees with it and with scikit-learn."""
        expected = self._summary(self._read_index(), version)["sha256"]
        metadata = self._read_metadata(version, expected)
        if metadata.get("sha256") != expected:
            path = self._directory(version) / METADATA_FILE
            what = "the index and metadata disagree on the artifact's hash:"
            raise ModelIntegrityError(version, path, expected, str(metadata.get("sha256")), what)
        artifacts.check_sklearn_version(
            version,
            str(metadata.get("library_versions", {}).get("scikit-learn", "unrecorded")),
            provenance.installed_sklearn_version(),
        )
        return expected

    def _read_metadata(self, version: str, expected_sha256: str) -> dict[str, Any]:
        path = self._directory(version) / METADATA_FILE
        try:
            return json.loads(path.read_bytes())
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError) as error:
            what = f"metadata is missing or unreadable ({error}):"
            raise ModelIntegrityError(version, path, expected_sha256, "unknown", what) from error

    def _move(
        self,
        index: dict[str, Any],
        action: str,
        before: Aliases,
        after: Aliases,
        reason: str,
        actor: str | None,
    ) -> AliasChange:
        change = AliasChange(
            action=action,
            reason=reason,
            actor=actor or provenance.current_actor(),
            at=_timestamp(self._clock()),
            before=before,
            after=after,
        )
        index["aliases"] = dataclasses.asdict(after)
        index["history"] = [*index["history"], dataclasses.asdict(change)][-HISTORY_LIMIT:]
        return change


def _timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("registry timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
