"""Model files on disk: written atomically, read back only when intact, compatible and trusted.

Loading a pickle runs whatever code the file names, so models are stored with skops,
which rebuilds only the types it is told to trust.  Beyond the types skops trusts by
default (scikit-learn's estimators, numpy arrays), a file may name only types on
``TRUSTED_TYPES``; anything else is refused, at registration and at load.

Before skops sees a file, its bytes must hash to the sha256 recorded when it was written
(a flipped bit or a truncated copy is refused), and it must have been written by the
installed scikit-learn major.minor: scikit-learn does not promise that a fitted
estimator from one minor release behaves the same, or loads at all, in another.

Every file the registry writes goes through ``atomic_write_bytes``: a temporary file in
the same directory, flushed and fsynced, then ``os.replace``d over the target, so a
reader sees the old content or the new, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any


def skops_io() -> ModuleType:
    """skops.io, imported on first use.

    Importing it builds skops' table of trusted scikit-learn types (seconds), and every
    Dagster run process loads this module with the definitions, most never touching a model.
    """
    import skops.io

    return skops.io


# Types that skops does not trust by default but our pipelines contain.  Extend this
# list, with the reason, when a pipeline needs a new one; never trust a whole module.
TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "numpy.dtype",  # every fitted estimator records its input dtypes
        "sklearn.tree._tree.Tree",  # RandomForestClassifier's fitted trees
        # HistGradientBoostingClassifier's fitted trees
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        # The FunctionTransformers of training_pipeline.ml.pipelines: our own code.
        "training_pipeline.ml.pipelines.as_float",
        "training_pipeline.ml.pipelines.as_object_with_nan",
    }
)


class RegistryError(Exception):
    """Base of every error the model registry raises on purpose."""


class ModelIntegrityError(RegistryError):
    """A model artifact whose bytes are not the ones that were registered."""

    def __init__(
        self, version: str, path: Path | str, expected: str, actual: str, what: str
    ) -> None:
        self.version, self.path, self.expected, self.actual = version, path, expected, actual
        super().__init__(
            f"model version {version}: {what} {path} (expected sha256 {expected}, "
            f"actual {actual}); refusing to use it"
        )


class UntrustedArtifactError(RegistryError):
    """A model file naming types outside ``TRUSTED_TYPES``."""

    def __init__(self, source: str, types: Iterable[str]) -> None:
        self.types = sorted(types)
        super().__init__(
            f"{source} contains types that are not on the allowlist: {', '.join(self.types)}; "
            "add them to training_pipeline.ml.artifacts.TRUSTED_TYPES only if they are safe"
        )


class IncompatibleModelError(RegistryError):
    """A model written by another scikit-learn minor release than the installed one."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in chunks (raises FileNotFoundError if missing)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_directory(directory: Path) -> None:
    """Make a rename inside ``directory`` durable, not only atomic."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_failure(path: Path, error: OSError, kept: str) -> OSError:
    """``error`` (same type and errno) restated with the file it was writing and what was
    kept: a full disk's ``write`` or ``fsync`` fails without naming any file."""
    reason = error.strerror or str(error)
    return type(error)(error.errno, f"could not write {path}: {reason}; {kept}", str(path))


def write_durably(path: Path, data: bytes) -> None:
    """Write a new file and fsync it (for files inside a not-yet-published directory)."""
    try:
        with open(path, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        raise write_failure(path, error, "nothing was published") from error


def write_temporary(path: Path, data: bytes) -> Path:
    """``data`` in a new, fsynced hidden file beside ``path``, ready to be renamed over it.

    On failure the temporary file is removed and the error names ``path``.
    """
    kept = f"{path.name} keeps its previous content (if any)"
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise write_failure(path, error, kept) from error
    temporary = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise write_failure(path, error, kept) from error
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def atomic_write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` so that no reader ever sees a partial file; ``mode``
    widens the private temporary file's permissions before it is published.

    On any failure the temporary file is removed and ``path`` keeps its old content.
    """
    temporary = write_temporary(path, data)
    try:
        if mode is not None:
            temporary.chmod(mode)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def to_json_bytes(value: Any) -> bytes:
    """Stable, readable JSON; numpy scalars become Python numbers, anything else unknown fails."""

    def convert(item: Any) -> Any:
        if hasattr(item, "tolist") and callable(item.tolist):  # numpy scalars and arrays
            return item.tolist()
        if isinstance(item, Path):
            return str(item)
        raise TypeError(f"cannot store {type(item).__name__} {item!r} as JSON")

    return (json.dumps(value, indent=2, sort_keys=True, default=convert) + "\n").encode()


def atomic_write_json(path: Path, value: Any) -> None:
    atomic_write_bytes(path, to_json_bytes(value))


def check_trusted(data: bytes, source: str) -> list[str]:
    """The types skops needs trusted to load ``data``; raise if any is not on the allowlist."""
    needed = skops_io().get_untrusted_types(data=data)
    refused = set(needed) - TRUSTED_TYPES
    if refused:
        raise UntrustedArtifactError(source, refused)
    return needed


def serialize_model(model: Any) -> bytes:
    """The skops bytes of ``model``, refused up front if they could not be loaded back."""
    data = skops_io().dumps(model)
    check_trusted(data, f"model of type {type(model).__name__}")
    return data


def minor_release(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def check_sklearn_version(version: str, recorded: str, installed: str) -> None:
    if minor_release(recorded) != minor_release(installed):
        raise IncompatibleModelError(
            f"model version {version} was written by scikit-learn {recorded}, but scikit-learn "
            f"{installed} is installed; fitted models are not portable across minor releases, "
            f"so retrain it with {installed} (or load it where {recorded} is installed)"
        )


def read_model(path: Path, *, version: str, expected_sha256: str) -> Any:
    """The model at ``path``, if its bytes hash to ``expected_sha256`` and its types are trusted.

    The bytes are read once and both hashed and deserialized from memory, so a file
    swapped between the check and the load cannot slip through.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelIntegrityError(
            version, path, expected_sha256, "missing", "artifact is missing:"
        ) from None
    return model_from_bytes(data, path, version=version, expected_sha256=expected_sha256)


def model_from_bytes(data: bytes, where: Path | str, *, version: str, expected_sha256: str) -> Any:
    """The model in ``data`` (read from ``where``), checked as ``read_model`` checks it."""
    actual = sha256_bytes(data)
    if actual != expected_sha256:
        raise ModelIntegrityError(
            version, where, expected_sha256, actual, "artifact is corrupt or truncated:"
        )
    trusted = check_trusted(data, f"model version {version} ({where})")
    return skops_io().loads(data, trusted=trusted)
