"""What sits under an S3 landing prefix, sorted like a local landing folder, and what
the new-data sensor sees there.

The rules mirror ``landing_folder.survey_landing``: only objects directly under the
prefix are taken (a deeper "subfolder" is reported and left alone), dot-names are a
writer's temporary names, and an object is settled once its ``LastModified`` is at least
the settle time old.  S3 has no links, pipes or partly written objects (an upload becomes
visible whole), so nothing is refused unread here.

An object is named by its full ``s3://bucket/prefix/name`` everywhere (manifest, lineage,
quarantine reasons), so a delivery is never mistaken for a local file.  Its signature
in the manifest is (url, size, LastModified, a number derived from the ETag): S3 sets
LastModified on every upload and the ETag changes with the bytes, so a match means the
object was not re-uploaded since it was taken, and it is neither downloaded nor hashed.
The sensor never downloads: it fingerprints each object by that signature.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from training_pipeline.ingestion.landing_folder import TAKE_AT_ONCE, settle_wait_reason
from training_pipeline.ingestion.landing_scan import LandingScan
from training_pipeline.ingestion.manifest import StatSignature
from training_pipeline.settings import LANDING_SETTLE_ENV, LandingLimits

QUOTE = '"'  # S3 sends an ETag in quotes


@dataclass(frozen=True)
class S3Object:
    url: str  # s3://bucket/prefix/name
    size: int
    modified_ns: int  # LastModified
    etag: str

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[1]

    @property
    def etag_number(self) -> int:
        """The ETag as a non-negative int64, for the manifest's ``ctime_ns`` column."""
        return int(hashlib.sha256(self.etag.encode()).hexdigest()[:15], 16)

    @property
    def signature(self) -> StatSignature:
        return (self.url, self.size, self.modified_ns, self.etag_number)


@dataclass
class S3Survey:
    ready: list[S3Object] = field(default_factory=list)
    deferred: list[tuple[S3Object, str]] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)


def split_url(url: str) -> tuple[str, str]:
    """(bucket, key prefix without slashes at either end) of ``s3://bucket/prefix/``."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return bucket, prefix.strip("/")


def _listing(fs: Any, url: str) -> list[dict]:
    bucket, prefix = split_url(url)
    path = f"{bucket}/{prefix}".rstrip("/")
    try:
        return fs.ls(path, detail=True, refresh=True)
    except FileNotFoundError:
        # An empty prefix does not exist on S3; a missing bucket is a configuration error.
        if not fs.exists(bucket):
            raise FileNotFoundError(
                f"the landing bucket of {url} does not exist (or these credentials cannot see it)"
            ) from None
        return []


def _modified_ns(info: dict) -> int:
    return int(info["LastModified"].timestamp() * 1e9)


def survey_s3_landing(
    fs: Any,
    url: str,
    settle_s: float = 0.0,
    now: float | None = None,
    settle_from: str = LANDING_SETTLE_ENV,
) -> S3Survey:
    """Sort the objects directly under ``url`` (``s3://bucket/prefix/``)."""
    survey = S3Survey()
    now = time.time() if now is None else now
    root = url.rstrip("/") + "/"
    for info in sorted(_listing(fs, url), key=lambda i: i["name"]):
        name = info["name"].rstrip("/").rsplit("/", 1)[-1]
        if not name or name.startswith(".") or f"s3://{info['name']}" == root:
            continue
        if info.get("type") == "directory":
            survey.ignored.append(
                (root + name + "/", "a subfolder: only objects directly under the prefix are read")
            )
            continue
        obj = S3Object(root + name, int(info["size"]), _modified_ns(info), info.get("ETag", ""))
        waiting = settle_wait_reason(obj.modified_ns / 1e9, now, settle_s, settle_from)
        if waiting is None:
            survey.ready.append(obj)
        else:
            survey.deferred.append((obj, waiting))
    return survey


def seconds_until_settled_s3(fs: Any, url: str, settle_s: float, now: float | None = None) -> float:
    """How long until every object now in flight under ``url`` has settled; 0 when none is."""
    now = time.time() if now is None else now
    return max(
        (
            obj.modified_ns / 1e9 + settle_s - now
            for obj, _ in survey_s3_landing(fs, url, settle_s, now).deferred
        ),
        default=0.0,
    )


def _fingerprint(obj: S3Object) -> list:
    return [obj.size, obj.modified_ns, obj.etag]


def scan_s3_landing(
    fs: Any,
    url: str,
    cursor: str | None,
    limits: LandingLimits = TAKE_AT_ONCE,
    now: float | None = None,
) -> LandingScan:
    """New or re-uploaded settled objects since ``cursor`` (``<url>@<etag>`` each)."""
    known: dict[str, list] = json.loads(cursor) if cursor else {}
    seen: dict[str, list] = {}
    new_content = []
    survey = survey_s3_landing(fs, url, limits.settle_s, now)
    for obj, _ in survey.deferred:
        if obj.url in known:  # keep what was seen: a later scan compares with it
            seen[obj.url] = known[obj.url]
    for obj in survey.ready:
        seen[obj.url] = _fingerprint(obj)
        if known.get(obj.url) != seen[obj.url]:
            new_content.append(f"{obj.url}@{obj.etag.strip(QUOTE)}")
    # Objects that left the prefix (quarantined) are forgotten; if they come back, they are new.
    return LandingScan(
        tuple(new_content),
        json.dumps(seen, sort_keys=True),
        tuple(obj.url for obj, _ in survey.deferred),
    )


def taken_before_cursor_s3(fs: Any, url: str, limits: LandingLimits, taken_before: float) -> str:
    """A cursor holding every object a batch that started at ``taken_before`` took: each
    object settled by then.  A later upload is left out, so the next scan yields it."""
    settled_by_ns = (taken_before - limits.settle_s) * 1e9
    return json.dumps(
        {
            obj.url: _fingerprint(obj)
            for obj in survey_s3_landing(fs, url, limits.settle_s).ready
            if obj.modified_ns < settled_by_ns
        },
        sort_keys=True,
    )
