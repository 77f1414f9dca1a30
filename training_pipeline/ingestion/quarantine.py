"""Moving a refused file out of the landing folder, with its reason beside it.

The order is: the reason file (written to a temporary name, then renamed), the move
(a rename of the entry itself: a link moves as a link, its target is never touched),
then the manifest row.  A crash can stop between any two, so every ingestion first looks
for reason files the manifest does not know: with the file beside it, the quarantine
happened and is recorded then; without it, the move never happened, the file is still in
the landing folder, and the orphan reason file is removed so the next attempt writes
its own.  Nothing is lost and nothing is counted twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from training_pipeline.ingestion.landing_folder import printable_name

REASON_SUFFIX = ".reason.json"
REASON_KIND = "training_pipeline/quarantine-reason/1"
MAX_REASON_BYTES = 64 * 1024
# The longest name most file systems take (bytes); the reason file's temporary name is the
# longest one written beside a quarantined file.
NAME_MAX = 255
_TMP = ".{}.tmp"


@dataclass(frozen=True)
class QuarantineRecord:
    """What the reason file says, enough to write the manifest row again after a crash."""

    file: str
    sha256: str
    format: str
    reason: str
    batch_id: str
    rows_landed: int | None
    size_bytes: int
    mtime_ns: int
    ctime_ns: int
    quarantined_at: str
    kind: str = REASON_KIND
    # The quarantined entry's own name in its folder (undecodable bytes kept as the
    # surrogates os uses); None in reason files written before names were recorded.
    name: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.file, self.sha256, self.batch_id)


def reason_name(name: str) -> str:
    """The reason file's name for a quarantined entry named ``name``.

    ``<name>.reason.json`` when that and its temporary name fit in a file name, so an
    operator sees which file it explains; otherwise a name made of the hash of ``name``
    (bounded, and as collision-free as SHA-256), the original name being inside.
    """
    readable = f"{name}{REASON_SUFFIX}"
    if len(os.fsencode(_TMP.format(readable))) <= NAME_MAX:
        return readable
    return hashlib.sha256(os.fsencode(name)).hexdigest()[:40] + REASON_SUFFIX


def _is_real_dir(path: Path) -> bool:
    # A quarantined link named like a folder must never become the folder written into.
    return path.is_dir() and not path.is_symlink()


def _free_dir(batch_dir: Path, name: str) -> Path:
    """The batch folder, or a numbered one inside it when the names are taken.

    Names are unique within the landing folder, but ``x`` and ``x.reason.json`` may
    both land, and the first one's reason file would collide with the second file.
    """
    candidate, number = batch_dir, 1
    while (
        (os.path.lexists(candidate) and not _is_real_dir(candidate))
        or os.path.lexists(candidate / name)
        or os.path.lexists(candidate / reason_name(name))
    ):
        number += 1
        candidate = batch_dir / f"_{number}"
    return candidate


def move_to_quarantine(path: Path, quarantine_dir: Path, record: QuarantineRecord) -> Path:
    """Write the reason, then move the entry; returns where the entry now is.

    A failure leaves no empty folder behind: the batch folder exists only with a file.
    """
    target_dir = _free_dir(quarantine_dir / record.batch_id, path.name)
    created = [d for d in (target_dir, *target_dir.parents) if not d.exists()]
    target_dir.mkdir(parents=True, exist_ok=True)
    reason_file = target_dir / reason_name(path.name)
    tmp = target_dir / _TMP.format(reason_file.name)
    try:
        # ensure_ascii: a name's undecodable bytes (surrogates) survive the round trip.
        text = json.dumps(asdict(record) | {"name": path.name}, indent=2) + "\n"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, reason_file)
        target = target_dir / path.name
        os.replace(path, target)
    except OSError:
        # The entry did not move: its reason must not outlive the attempt.
        for written in (tmp, reason_file):
            written.unlink(missing_ok=True)
        _remove_empty(created)
        raise
    return target


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first
        try:
            folder.rmdir()
        except OSError:
            return  # not empty (or gone): it holds something worth keeping


def prune_empty_batch_folders(quarantine_dir: Path) -> None:
    """Remove batch folders a crash left empty (between the mkdir and the first write)."""
    if not quarantine_dir.is_dir():
        return
    for folder, _subfolders, names in os.walk(quarantine_dir, topdown=False):
        path = Path(folder)
        if path != quarantine_dir and not names and not os.listdir(path):
            path.rmdir()


def _reason_files(quarantine_dir: Path) -> Iterator[Path]:
    if not quarantine_dir.is_dir():
        return
    for folder, _, names in os.walk(quarantine_dir):
        for name in names:
            if not name.endswith(REASON_SUFFIX) or name.startswith("."):
                continue
            path = Path(folder) / name
            st = os.lstat(path)
            # A quarantined delivery may be named like a reason file: never open a link or
            # a pipe, nor read a file far larger than any reason file this module writes.
            if stat.S_ISREG(st.st_mode) and st.st_size <= MAX_REASON_BYTES:
                yield path


def _read_record(reason_file: Path) -> QuarantineRecord | None:
    """The record, or None for a file that only looks like a reason file (a quarantined
    delivery may itself be named ``*.reason.json``); ours are written atomically."""
    try:
        data = json.loads(reason_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("kind") != REASON_KIND:
        return None
    try:
        record = QuarantineRecord(**data)
    except TypeError:
        return None
    name = record.name
    if name is not None and (not isinstance(name, str) or name in ("", ".", "..") or "/" in name):
        return None  # not a name in this folder: not a reason file this module wrote
    return record


@dataclass(frozen=True)
class Unrecorded:
    moved: list[tuple[QuarantineRecord, Path]]  # quarantined but not in the manifest
    orphans: list[Path]  # reason files of moves that never happened


def find_unrecorded(
    quarantine_dir: Path, recorded: set[tuple[str, str, str]], recorded_paths: set[str]
) -> Unrecorded:
    """``recorded``: (file, sha256, batch) of manifest rows; ``recorded_paths``: where
    their files were moved (a delivery that looks like a reason file is one of those)."""
    found = Unrecorded([], [])
    for reason_file in _reason_files(quarantine_dir):
        if printable_name(str(reason_file)) in recorded_paths:
            continue
        record = _read_record(reason_file)
        if record is None or record.key in recorded:
            continue
        moved = reason_file.with_name(record.name or reason_file.name.removesuffix(REASON_SUFFIX))
        if os.path.lexists(moved):
            found.moved.append((record, moved))
        else:
            found.orphans.append(reason_file)
    return found
