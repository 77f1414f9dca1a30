"""What sits in the landing folder, sorted into what may be read now and what may not.

Only regular files directly in the folder are ever opened.  A symbolic link is never
followed (it could point anywhere on the machine, ``..`` included): it is quarantined
itself, like any other entry that is not a regular file (a FIFO would block a reader
forever).  Subfolders are not scanned; they are reported and left where they are.  A file
changed within the settle time may still be being written in place by a foreign writer,
so it waits for a later run: it is neither read nor quarantined.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from training_pipeline.settings import LANDING_SETTLE_ENV, LandingLimits

TAKE_AT_ONCE = LandingLimits(settle_s=0.0)
"""The default limits with no settle time, for callers that land the files themselves
(tests, the demo); the deployed pipeline waits ``TRAINING_PIPELINE_LANDING_SETTLE_S``."""


@dataclass(frozen=True)
class Entry:
    """One entry of the landing folder, named as the manifest shows it."""

    path: Path  # the entry itself, never resolved through a link
    rel: str  # printable name (undecodable bytes shown as \\x escapes)
    lstat: os.stat_result


@dataclass
class LandingSurvey:
    ready: list[Entry] = field(default_factory=list)  # regular files, settled
    refused: list[tuple[Entry, str]] = field(default_factory=list)  # quarantined unread
    deferred: list[tuple[Entry, str]] = field(default_factory=list)  # in flight: next run
    ignored: list[tuple[str, str]] = field(default_factory=list)  # subfolders, left alone


def printable_name(name: str) -> str:
    """The name with bytes that are not UTF-8 shown as ``\\xNN`` (os keeps them as surrogates)."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def stat_signature(st: os.stat_result) -> tuple[int, int, int, int, int]:
    """Changes whenever the entry is written, renamed, replaced or swapped for a link."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device or other special file"


def _link_description(path: Path) -> str:
    try:
        target = os.readlink(path)
    except OSError as error:
        return f"a symbolic link whose target cannot be read ({error.strerror})"
    return f"a symbolic link (to {printable_name(target)!r})"


def in_flight_reason(
    st: os.stat_result, now: float, settle_s: float, settle_from: str = LANDING_SETTLE_ENV
) -> str | None:
    """Why the file must wait, or None; ``settle_from`` names where ``settle_s`` was set.

    The kernel sets ``ctime`` on every write, rename and ``utime`` and no writer can set it
    back, so an mtime stamped in the past never makes a fresh file look settled.
    """
    return settle_wait_reason(st.st_ctime_ns / 1e9, now, settle_s, settle_from)


def settle_wait_reason(
    changed_at: float, now: float, settle_s: float, settle_from: str = LANDING_SETTLE_ENV
) -> str | None:
    """Why a delivery last changed at ``changed_at`` (epoch seconds) must wait, or None."""
    age_s = now - changed_at
    if age_s < settle_s:
        return (
            f"changed {max(age_s, 0):.1f} s ago, less than the settle time of {settle_s:g} s "
            f"({settle_from}): it may still be being written"
        )
    return None


def survey_landing(
    landing_dir: Path,
    settle_s: float = 0.0,
    now: float | None = None,
    settle_from: str = LANDING_SETTLE_ENV,
) -> LandingSurvey:
    """Sort the folder's entries (dot-names excepted: writers land those, then rename)."""
    survey = LandingSurvey()
    if not landing_dir.is_dir():
        return survey
    now = time.time() if now is None else now
    root = landing_dir.resolve()
    with os.scandir(landing_dir) as entries:
        listed = sorted(entries, key=lambda e: os.fsencode(e.name))
    for dir_entry in listed:
        if dir_entry.name.startswith("."):
            continue
        path = landing_dir / dir_entry.name
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue  # moved away since the listing (a writer's rename, a quarantine)
        entry = Entry(path, printable_name(dir_entry.name), st)
        if stat.S_ISDIR(st.st_mode):
            survey.ignored.append(
                (entry.rel, "a subfolder: only files directly in the landing folder are read")
            )
        elif stat.S_ISLNK(st.st_mode):
            survey.refused.append((entry, f"{_link_description(path)}; links are never followed"))
        elif not stat.S_ISREG(st.st_mode):
            survey.refused.append((entry, f"{_kind(st.st_mode)}, not a regular file"))
        elif entry.rel != dir_entry.name:
            survey.refused.append((entry, "the file name is not valid UTF-8"))
        elif path.resolve().parent != root:
            # Cannot happen for a regular file listed in the folder; checked, not assumed.
            survey.refused.append((entry, "resolves outside the landing folder"))
        elif (waiting := in_flight_reason(st, now, settle_s, settle_from)) is not None:
            survey.deferred.append((entry, waiting))
        else:
            survey.ready.append(entry)
    return survey


def seconds_until_settled(landing_dir: Path, settle_s: float, now: float | None = None) -> float:
    """How long until every file now in flight has settled; 0 when none is."""
    now = time.time() if now is None else now
    return max(
        (
            entry.lstat.st_ctime_ns / 1e9 + settle_s - now
            for entry, _ in survey_landing(landing_dir, settle_s, now).deferred
        ),
        default=0.0,
    )
