"""The two places a registry's files may be: the ``RegistryStore`` interface, and its
local implementation over ``registry_store``'s folder functions (rename + file lock).
``registry_s3.S3RegistryStore`` is the other one."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from training_pipeline.ml.registry_store import (
    INDEX_FILE,
    LOCK_FILE,
    VERSIONS_DIR,
    attach_files,
    publish_version,
    read_index,
    update_index,
    version_directory,
)

T = TypeVar("T")


class RegistryStore(Protocol):
    """Where a registry keeps its index and versions: ``LocalRegistryStore`` (a folder)
    or ``registry_s3.S3RegistryStore`` (a bucket prefix).  ``update_index`` applies a
    change so that no concurrent writer's change is lost; ``attach_files`` is called
    inside it."""

    root: Any

    def describe(self) -> str: ...
    def read_index(self) -> dict[str, Any]: ...
    def update_index(self, change: Callable[[dict[str, Any]], T]) -> T: ...
    def change_stamp(self) -> object: ...
    def publish_version(
        self,
        version: str,
        model_bytes: bytes,
        metadata: dict[str, Any],
        extra_files: Mapping[str, Path | bytes],
    ) -> None: ...
    def attach_files(self, version: str, files: Mapping[str, bytes]) -> dict[str, str]: ...
    def read_file(self, version: str, name: str) -> bytes: ...
    def location(self, version: str, name: str = "") -> Path | str: ...
    def url(self, version: str, name: str) -> str: ...
    def exists(self, version: str, name: str) -> bool: ...


class LocalRegistryStore:
    """The registry's files in a local folder: rename for atomicity, a file lock for
    writers (the functions above).  ``S3RegistryStore`` has the same methods."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def describe(self) -> str:
        return str(self.root.resolve())

    def read_index(self) -> dict[str, Any]:
        return read_index(self.root)

    def update_index(self, change: Callable[[dict[str, Any]], T]) -> T:
        return update_index(self.root, change)

    def change_stamp(self) -> tuple[int, int, int] | None:
        """Changes whenever the index is replaced (a rename gives a new inode)."""
        try:
            status = (self.root / INDEX_FILE).stat()
        except FileNotFoundError:
            return None
        return (status.st_mtime_ns, status.st_size, status.st_ino)

    def publish_version(
        self,
        version: str,
        model_bytes: bytes,
        metadata: dict[str, Any],
        extra_files: Mapping[str, Path | bytes],
    ) -> None:
        publish_version(self.root, version, model_bytes, metadata, extra_files)

    def attach_files(self, version: str, files: Mapping[str, bytes]) -> dict[str, str]:
        return attach_files(self.root, version, files)

    def read_file(self, version: str, name: str) -> bytes:
        """The file's bytes; ``FileNotFoundError`` if the version has no such file."""
        return (version_directory(self.root, version) / name).read_bytes()

    def location(self, version: str, name: str = "") -> Path:
        """Where the file is, as a person would open it (a path here)."""
        directory = version_directory(self.root, version)
        return directory / name if name else directory

    def url(self, version: str, name: str) -> str:
        """A link to the file (``file://``)."""
        return (version_directory(self.root, version) / name).resolve().as_uri()

    def exists(self, version: str, name: str) -> bool:
        return (version_directory(self.root, version) / name).is_file()


def legacy_layout_message(models_dir: Path, name: str) -> str | None:
    """Why ``models_dir`` cannot hold model ``name``'s registry: it is itself a registry
    of the one-model layout of earlier releases.  Nothing is moved silently; the message
    says how to move it.  None: the layout is current."""
    legacy = models_dir / INDEX_FILE
    if not legacy.exists():
        return None
    target = shlex.quote(str(models_dir / name))
    moved = " ".join(
        shlex.quote(str(models_dir / part))
        for part in (INDEX_FILE, VERSIONS_DIR, LOCK_FILE)
        if (models_dir / part).exists()
    )
    return (
        f"{legacy} is a registry in the old one-model layout; each model now has "
        f"its own folder {models_dir}/<model>/. Nothing was moved: stop the "
        f"pipeline and move it with `mkdir -p {target} && mv {moved} {target}/`"
    )
