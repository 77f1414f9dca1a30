"""Where a model came from: the code commit, the library versions, and who acted.

Recorded with every registered model so that a prediction can be traced to the exact
code and libraries that produced the model, and an alias change to the person or
process that made it.
"""

from __future__ import annotations

import getpass
import platform
import subprocess
from importlib import metadata
from pathlib import Path

UNKNOWN = "unknown"
REPO_DIR = Path(__file__).resolve().parents[2]
# Distributions whose versions change what a fitted model is or how it loads.
LIBRARIES = ("scikit-learn", "skops", "numpy", "scipy", "pandas", "optuna")


def code_version(repo_dir: Path = REPO_DIR) -> str:
    """The git commit checked out in ``repo_dir``, or ``"unknown"`` outside a git checkout.

    Never fails: a model trained from an unpacked source tree or a wheel is still a model.
    """
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--verify", "HEAD"],
            cwd=repo_dir,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):  # no git binary, no such directory, hung
        return UNKNOWN
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else UNKNOWN


def library_versions() -> dict[str, str]:
    """Python's version and each of ``LIBRARIES``'s, ``"not installed"`` where absent."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def installed_sklearn_version() -> str:
    return metadata.version("scikit-learn")


def current_actor() -> str:
    """The login name of whoever runs this process, for the alias history."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no USER/LOGNAME and no passwd entry (some containers)
        return UNKNOWN
