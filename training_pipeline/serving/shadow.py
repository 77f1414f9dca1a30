"""Shadow serving: which candidate a model shadows, since when, and whether it has
shadowed long enough to be promoted.

The candidate is the newest version that passed the gate, was registered after the
production version and was never rejected; it gets a copy of every request, its
predictions are logged beside production's (role "shadow") and never returned.  The
server marks when it started shadowing a version with a small file beside the model's
prediction log, so the promotion step can read the shadow period without the server.

A promotion held for too short a shadow period is run again when the period has passed
(``promotion_due``, asked by the shadow promotion sensor): nothing else would, since
the promotion step runs when a new candidate arrives.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from training_pipeline.ml.artifacts import atomic_write_bytes
from training_pipeline.ml.registry_store import ModelVersion

SHADOW_DIR = "shadow"


def shadow_candidate(versions: Sequence[ModelVersion], production: str | None) -> str | None:
    """The version to shadow production with, or None (``versions`` newest first)."""
    current = next((v for v in versions if v.version == production), None)
    for version in versions:
        if version.version == production or (current and version.created_at <= current.created_at):
            return None
        if version.rejected is None and (version.gate or {}).get("passed"):
            return version.version
    return None


def marker(logs_dir: Path, model: str, version: str) -> Path:
    return logs_dir / model / SHADOW_DIR / f"{version}.json"


def mark_started(logs_dir: Path, model: str, version: str, now: datetime) -> None:
    """Record that ``version`` started shadowing at ``now``, unless it had already."""
    path = marker(logs_dir, model, version)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps({"started_at": now.isoformat()}).encode())


def shadowed_since(logs_dir: Path, model: str, version: str) -> datetime | None:
    path = marker(logs_dir, model, version)
    if not path.exists():
        return None
    return datetime.fromisoformat(json.loads(path.read_bytes())["started_at"])


def shadow_wait(
    min_shadow_s: int | None, since: datetime | None, now: datetime, version: str
) -> str | None:
    """Why ``version`` may not be promoted yet (too short a shadow period), or None."""
    if min_shadow_s is None:
        return None
    hours = min_shadow_s / 3600
    if since is None:
        return f"{version} has not served in shadow yet; serve.min_shadow_period is {hours:g}h"
    shadowed = (now - since).total_seconds()
    if shadowed < min_shadow_s:
        started = f"{since:%Y-%m-%d %H:%M}"
        return (
            f"{version} has shadowed production for {shadowed / 3600:.1f}h (since {started} "
            f"UTC); serve.min_shadow_period is {hours:g}h"
        )
    return None


@dataclass(frozen=True)
class AwaitingPromotion:
    """What the registry and the shadow marker say about the version awaiting promotion."""

    candidate: str | None  # ``shadow_candidate``: gate passed, newer than production
    newest: str | None  # the newest registered version: what the promotion step reads
    held: str | None  # a person's decision holding it (a pin, ...): registry.promotion_block
    since: datetime | None  # when it started shadowing (``shadowed_since``)


def promotion_due(
    awaiting: AwaitingPromotion, min_shadow_s: int, now: datetime, requested: Collection[str]
) -> tuple[bool, str]:
    """Whether to run the promotion step again now, and why (not).

    Once per candidate (``requested``: the versions it was already run again for), when
    the candidate is the newest version (the one the step would promote), no person
    holds it, and it has shadowed production for ``min_shadow_s``.  A gate-passing
    version newer than production has been held by the shadow period: with a minimum
    period, every candidate is, since shadowing starts only once it passed the gate.
    """
    candidate = awaiting.candidate
    if candidate is None:
        return False, "no gate-passing version newer than production awaits promotion"
    if awaiting.newest != candidate:
        return False, f"{awaiting.newest} is newer than {candidate}; its own promotion decides"
    if awaiting.held is not None:
        return False, awaiting.held
    if candidate in requested:
        return False, f"the promotion of {candidate} was already run again once"
    wait = shadow_wait(min_shadow_s, awaiting.since, now, candidate)
    if wait is not None:
        return False, wait
    return True, f"{candidate} has shadowed production for serve.min_shadow_period"
