"""When feature drift retrains a model: at most once per drift episode.

Drift that persists keeps the drift check at ERROR on every features refresh; without
memory each refresh would retrain, and twice on the same data.  The drift sensor keeps
a small state in its cursor, and ``decide`` is the whole policy, as a pure function::

    no retraining yet ──ERROR──▶ RETRAIN ──▶ retrained on data D at time T
                                                │
         ERROR on data D (same data) ───────────┤ wait: nothing new to learn from
         ERROR on new data, before T+cool-down ─┤ wait (evaluation kept; looked at
                                                │   again every tick until the cool-down ends)
         ERROR on new data, after T+cool-down ──┴▶ RETRAIN ──▶ retrained on D' at T'
         WARN / passed ─────────────────────────── nothing (the memory stays)

"Data" is the fingerprint of the rows the drift check measured (``drift_data`` in its
metadata); the cool-down is the model's ``retraining.drift_cooldown``.  An evaluation is
looked at once, except while it waits for the cool-down.  A cursor written before this
state existed (the last evaluation id alone) reads as "no retraining yet".
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Literal

Severity = Literal["none", "warn", "error"]


@dataclass(frozen=True)
class DriftMemory:
    """What the drift sensor remembers between ticks (its cursor)."""

    evaluation: int = 0  # the id of the last drift evaluation decided on
    retrained_at: float | None = None  # UNIX time of the last drift-triggered retraining
    retrained_on: str | None = None  # the drift data that retraining was triggered on

    def to_cursor(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_cursor(cls, cursor: str | None) -> DriftMemory:
        if not cursor:
            return cls()
        if cursor.isdigit():  # the cursor of earlier releases: the evaluation id
            return cls(evaluation=int(cursor))
        return cls(**json.loads(cursor))


@dataclass(frozen=True)
class DriftEvaluation:
    id: int
    severity: Severity
    data: str | None  # fingerprint of the rows measured; None: not recorded


@dataclass(frozen=True)
class Decision:
    retrain: bool
    reason: str
    memory: DriftMemory


def decide(
    memory: DriftMemory, evaluation: DriftEvaluation, now: float, cooldown_s: float
) -> Decision:
    """Whether ``evaluation`` retrains, why, and what to remember (see the module doc)."""
    if evaluation.id <= memory.evaluation:
        return Decision(False, "no new drift evaluation", memory)
    looked = replace(memory, evaluation=evaluation.id)
    if evaluation.severity != "error":
        return Decision(False, f"drift evaluation {evaluation.id} is below ERROR", looked)
    retrain = replace(looked, retrained_at=now, retrained_on=evaluation.data)
    if memory.retrained_at is None:
        return Decision(True, f"drift at ERROR (evaluation {evaluation.id})", retrain)
    if evaluation.data is None or evaluation.data == memory.retrained_on:
        return Decision(
            False,
            f"drift persists on the data already retrained for at {_when(memory.retrained_at)}; "
            "waiting for new data",
            looked,
        )
    ready_at = memory.retrained_at + cooldown_s
    if now < ready_at:
        # Not consumed: when the cool-down ends this evaluation retrains, unless a newer
        # one has replaced it.
        return Decision(
            False, f"new data drifts, but the cool-down lasts until {_when(ready_at)}", memory
        )
    return Decision(True, f"drift at ERROR on new data (evaluation {evaluation.id})", retrain)


def _when(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
