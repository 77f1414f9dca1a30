"""What has landed since the sensor last looked, by path and content hash.

The sensor's cursor remembers each file's stat signature (size, mtime, ctime) and hash.
A file whose signature is unchanged is not read again; any other file is hashed, so a
late file with an old mtime, or a rewrite that kept size and mtime, is still seen (the
kernel moves ctime on every write).  Only new content yields a key: an identical
re-delivery yields nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from training_pipeline.ingestion.file_formats import sha256_of
from training_pipeline.ingestion.order_files import discover_files


@dataclass(frozen=True)
class LandingScan:
    new_content: tuple[str, ...]  # "<relative path>@<sha256>" for each new or changed file
    cursor: str  # JSON: {path: [size, mtime_ns, ctime_ns, sha256]}


def scan_landing(landing_dir: Path, cursor: str | None) -> LandingScan:
    known: dict[str, list] = json.loads(cursor) if cursor else {}
    seen: dict[str, list] = {}
    new_content = []
    for path in discover_files(landing_dir):
        rel = path.relative_to(landing_dir).as_posix()
        stat = path.stat()
        signature = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]
        previous = known.get(rel)
        if previous is not None and previous[:3] == signature:
            seen[rel] = previous
            continue
        sha = sha256_of(path)
        seen[rel] = [*signature, sha]
        if previous is None or previous[3] != sha:
            new_content.append(f"{rel}@{sha}")
    # Files that left the folder (quarantined) are forgotten; if they come back, they are new.
    return LandingScan(tuple(new_content), json.dumps(seen, sort_keys=True))
