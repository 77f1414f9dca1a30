"""What has landed since the sensor last looked, by path and content hash.

The sensor's cursor remembers each file's stat signature (size, mtime, ctime) and hash.
A file whose signature is unchanged is not read again; any other file is hashed, so a
late file with an old mtime, or a rewrite that kept size and mtime, is still seen (the
kernel moves ctime on every write).  Only new content yields a key: an identical
re-delivery yields nothing (and ``taken_before_cursor`` gives a sensor that never looked a
cursor of the files ingestion already took).  The scan sees the folder exactly as ingestion does
(``landing_folder.survey_landing``): a file still settling is not taken yet, and a link
or other non-file is never read but does yield a key, so that ingestion quarantines it.
"""

from __future__ import annotations

import errno
import json
from dataclasses import dataclass
from pathlib import Path

from training_pipeline.ingestion.file_formats import sha256_of
from training_pipeline.ingestion.landing_folder import TAKE_AT_ONCE, survey_landing
from training_pipeline.settings import LandingLimits


@dataclass(frozen=True)
class LandingScan:
    new_content: tuple[str, ...]  # "<relative path>@<sha256>" for each new or changed file
    cursor: str  # JSON: {path: [size, mtime_ns, ctime_ns, sha256]}
    deferred: tuple[str, ...] = ()  # files still settling, taken by a later scan


def _content_key(path: Path, size: int, ctime_ns: int, max_file_bytes: int) -> str | None:
    """The file's sha256; a signature for a file too large to read; None once it is gone."""
    if size > max_file_bytes:
        return f"over-limit:{size}:{ctime_ns}"
    try:
        return sha256_of(path)
    except FileNotFoundError:
        return None  # moved away (quarantined) since the folder was listed
    except OSError as error:
        if error.errno == errno.ELOOP:
            return None  # swapped for a link since listed: the next scan sees the link
        raise


def scan_landing(
    landing_dir: Path,
    cursor: str | None,
    limits: LandingLimits = TAKE_AT_ONCE,
    now: float | None = None,
) -> LandingScan:
    """``now`` (epoch seconds) is the clock the settle time is measured against."""
    known: dict[str, list] = json.loads(cursor) if cursor else {}
    seen: dict[str, list] = {}
    new_content = []
    survey = survey_landing(landing_dir, limits.settle_s, now)
    for entry, _ in survey.refused:
        st = entry.lstat
        key = f"refused:{st.st_ino}:{st.st_ctime_ns}"
        seen[entry.rel] = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, key]
        if known.get(entry.rel, [None] * 4)[3] != key:
            new_content.append(f"{entry.rel}@{key}")
    for entry, _ in survey.deferred:
        if entry.rel in known:  # keep what was seen, so an unchanged rewrite yields nothing
            seen[entry.rel] = known[entry.rel]
    for entry in survey.ready:
        st = entry.lstat
        signature = [st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        previous = known.get(entry.rel)
        if previous is not None and previous[:3] == signature:
            seen[entry.rel] = previous
            continue
        sha = _content_key(entry.path, st.st_size, st.st_ctime_ns, limits.max_file_bytes)
        if sha is None:
            continue
        seen[entry.rel] = [*signature, sha]
        if previous is None or previous[3] != sha:
            new_content.append(f"{entry.rel}@{sha}")
    # Files that left the folder (quarantined) are forgotten; if they come back, they are new.
    return LandingScan(
        tuple(new_content),
        json.dumps(seen, sort_keys=True),
        tuple(entry.rel for entry, _ in survey.deferred),
    )


def taken_before_cursor(landing_dir: Path, limits: LandingLimits, taken_before: float) -> str:
    """A cursor holding every file a batch that started at ``taken_before`` (epoch
    seconds) took: each file settled by then, i.e. last changed ``limits.settle_s``
    before.  A file changed later is left out, so the next scan yields it."""
    seen: dict[str, list] = {}
    settled_by_ns = (taken_before - limits.settle_s) * 1e9
    for entry in survey_landing(landing_dir, limits.settle_s).ready:
        st = entry.lstat
        if st.st_ctime_ns >= settled_by_ns:
            continue
        sha = _content_key(entry.path, st.st_size, st.st_ctime_ns, limits.max_file_bytes)
        if sha is not None:
            seen[entry.rel] = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, sha]
    return json.dumps(seen, sort_keys=True)
