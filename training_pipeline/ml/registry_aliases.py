"""Production aliases: promotions, rollbacks, rejections and pins, and their full history.

``previous_production`` is derived, on every move, from the whole alias history: the most
recent earlier production version that was neither rejected nor rolled back from.  So a
rollback never loses it: after rolling back from v3 to v2 it names v1, and a second
rollback goes there.  Indexes written before rejections and pins existed keep loading;
their rollbacks count as rejections when ``previous_production`` is derived.

A rollback *rejects* the version it rolls back from (who, when, why, on the version's
summary): automation never promotes it again, nor a version trained on the same training
set (``automatic_promotion_block``).  A *pin* holds production where it is: automation
still trains and validates, but nothing is promoted until someone unpins.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from training_pipeline.ml import provenance
from training_pipeline.ml import registry_store as store
from training_pipeline.ml.artifacts import RegistryError
from training_pipeline.ml.registry_local import RegistryStore
from training_pipeline.ml.registry_store import (
    AliasChange,
    Aliases,
    Decision,
    ModelVersion,
)

PROMOTED, ROLLBACK = "promoted", "rollback"
AUTOMATIC_ROLLBACK = "automatic rollback after failed smoke test"
LEFT_FOR_A_REASON = ("rollback", "withdraw")


class AliasError(RegistryError):
    """An alias move that makes no sense now: nothing to roll back, already production..."""


class PinnedError(AliasError):
    """Production is pinned: nothing is promoted until it is unpinned."""


def timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("registry timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def previous_of(
    history: Sequence[AliasChange], production: str | None, rejected: set[str]
) -> str | None:
    """The most recent version production held before ``production`` that may come back.

    Excluded: ``rejected`` versions, and a version whose last move out of production was
    a rollback or a withdrawal (an older index records no rejections, only those moves).
    """
    seen: set[str | None] = {None, production}
    for change in reversed(history):
        for version, left_for_a_reason in (
            (change.after.production, False),
            (change.before.production, change.action in LEFT_FOR_A_REASON),
        ):
            if version in seen:
                continue
            seen.add(version)
            if not left_for_a_reason and version not in rejected:
                return version
    return None


def automatic_promotion_block(
    pin: Decision | None, versions: Sequence[ModelVersion], candidate: ModelVersion
) -> str | None:
    """Why automation must not promote ``candidate``, or None when it may."""
    if pin is not None:
        return (
            f"production is pinned to {pin.version} by {pin.actor} at {pin.at} ({pin.reason}); "
            "automation trains and validates but does not promote until "
            "`training-pipeline unpin`"
        )
    if candidate.rejected is not None:
        return f"{candidate.version} was rejected: {_rolled_back(candidate.rejected)}"
    for other in versions:
        if other.rejected is None or other.version == candidate.version:
            continue
        if other.data_fingerprint == candidate.data_fingerprint:
            return (
                f"{candidate.version} was trained on the same training set "
                f"({candidate.data_fingerprint[:12]}) as {other.version}, which was rejected: "
                f"{_rolled_back(other.rejected)}"
            )
    return None


def _rolled_back(rejection: Decision) -> str:
    return f"rolled back by {rejection.actor} at {rejection.at} ({rejection.reason})"


class AliasMoves:
    """The alias half of ``ModelRegistry``: reading and moving production, under the
    index's compare-and-swap (``RegistryStore.update_index``)."""

    store: RegistryStore
    _clock: Callable[[], datetime]

    def load(self, version: str) -> Any:  # provided by ModelRegistry
        raise NotImplementedError

    def versions(self) -> list[ModelVersion]:  # provided by ModelRegistry
        raise NotImplementedError

    def get(self, version: str) -> ModelVersion:  # provided by ModelRegistry
        raise NotImplementedError

    def aliases(self) -> Aliases:
        return Aliases(**self.store.read_index()["aliases"])

    def history(self) -> list[AliasChange]:
        """Every alias change, oldest first."""
        return [AliasChange.from_dict(entry) for entry in self.store.read_index()["history"]]

    def pinned(self) -> Decision | None:
        """The pin holding production, if any."""
        return Decision.from_dict(self.store.read_index().get("pin"))

    def promotion_block(self, version: str) -> str | None:
        """Why automation must not promote ``version`` now (``automatic_promotion_block``)."""
        return automatic_promotion_block(self.pinned(), self.versions(), self.get(version))

    def promote(
        self, version: str, reason: str = PROMOTED, actor: str | None = None
    ) -> AliasChange:
        """Make ``version`` production; refused (``PinnedError``) while production is pinned."""
        self.load(version)

        def move(index: dict[str, Any]) -> AliasChange:
            store.summary_of(index, version)
            before = Aliases(**index["aliases"])
            if before.production == version:
                raise AliasError(f"{version} is already in production")
            if (pin := Decision.from_dict(index.get("pin"))) is not None:
                raise PinnedError(
                    f"production is pinned to {pin.version} by {pin.actor} ({pin.reason}); "
                    f"{version} was not promoted"
                )
            return self._move(index, "promote", before, version, reason, actor)

        return self.store.update_index(move)

    def rollback(
        self,
        to: str | None = None,
        reason: str = ROLLBACK,
        actor: str | None = None,
        *,
        replacing: str | None = None,
        reject: bool = True,
    ) -> AliasChange:
        """Put previous_production (or the version ``to``) back into production.

        The target must load, exactly as for ``promote``.  With ``reject`` the version
        rolled back from is marked rejected (``actor``, now, ``reason``), so automation
        never promotes it again; naming a rejected version with ``to`` restores it and
        lifts its rejection (a person's decision).  A pin stays, on the restored version.
        ``replacing`` names the production version the caller judged: if production is
        another one by now (a concurrent run promoted it), nothing is done.
        """
        seen = self.aliases()
        if seen.production is None:
            raise AliasError("there is no production model to roll back")
        if replacing is not None and seen.production != replacing:
            raise AliasError(
                f"production is {seen.production}, no longer {replacing}; nothing was done"
            )
        target = to if to is not None else seen.previous_production
        if target is None:
            raise AliasError(
                f"production is {seen.production} and there is no previous production "
                "version to roll back to; name the version to restore"
            )
        if target == seen.production:
            raise AliasError(f"{target} is already in production")
        self.load(target)

        def move(index: dict[str, Any]) -> AliasChange:
            before = Aliases(**index["aliases"])
            if before != seen:
                raise AliasError(f"the aliases changed meanwhile ({before}); nothing was done")
            store.summary_of(index, target).pop("rejected", None)
            if index.get("pin"):
                index["pin"]["version"] = target
            change = self._move(index, "rollback", before, target, reason, actor)
            if reject:
                self._reject(index, seen.production, change)
            return change

        return self.store.update_index(move)

    def revert(self, change: AliasChange, reason: str, actor: str | None = None) -> AliasChange:
        """Restore both aliases exactly as they were before ``change``, rejecting the
        version it promoted.

        Refused if the aliases moved since ``change``; the production restored, if any,
        must load.  Used to undo a promotion whose smoke test failed.
        """
        if change.before.production is not None:
            self.load(change.before.production)

        def move(index: dict[str, Any]) -> AliasChange:
            before = Aliases(**index["aliases"])
            if before != change.after:
                raise AliasError(f"the aliases changed since {change.at} ({before}); not reverted")
            undone = self._record(index, "rollback", before, change.before, reason, actor)
            if change.after.production is not None:
                self._reject(index, change.after.production, undone)
            return undone

        return self.store.update_index(move)

    def withdraw(self, version: str, reason: str, actor: str | None = None) -> AliasChange:
        """Leave production empty rather than serve ``version`` (which is rejected)."""

        def move(index: dict[str, Any]) -> AliasChange:
            before = Aliases(**index["aliases"])
            if before.production != version:
                raise AliasError(f"{version} is not in production ({before})")
            change = self._move(index, "withdraw", before, None, reason, actor)
            self._reject(index, version, change)
            return change

        return self.store.update_index(move)

    def pin(self, reason: str, actor: str | None = None) -> AliasChange:
        """Hold production where it is until ``unpin``; recorded in the alias history."""

        def move(index: dict[str, Any]) -> AliasChange:
            aliases = Aliases(**index["aliases"])
            if aliases.production is None:
                raise AliasError("there is no production model to pin")
            if (pin := Decision.from_dict(index.get("pin"))) is not None:
                raise AliasError(f"production is already pinned by {pin.actor} ({pin.reason})")
            change = self._record(index, "pin", aliases, aliases, reason, actor)
            index["pin"] = dataclasses.asdict(
                Decision(change.actor, change.at, reason, aliases.production)
            )
            return change

        return self.store.update_index(move)

    def unpin(self, reason: str, actor: str | None = None) -> AliasChange:
        """Let automation promote again."""

        def move(index: dict[str, Any]) -> AliasChange:
            if not index.get("pin"):
                raise AliasError("production is not pinned")
            del index["pin"]
            aliases = Aliases(**index["aliases"])
            return self._record(index, "unpin", aliases, aliases, reason, actor)

        return self.store.update_index(move)

    # Internals: each is called under the index lock with the index being changed.

    @staticmethod
    def _reject(index: dict[str, Any], version: str, change: AliasChange) -> None:
        """Mark ``version`` rejected by the actor, at the time and for the reason of ``change``."""
        decision = Decision(change.actor, change.at, change.reason)
        store.summary_of(index, version)["rejected"] = dataclasses.asdict(decision)

    def _move(
        self,
        index: dict[str, Any],
        action: str,
        before: Aliases,
        production: str | None,
        reason: str,
        actor: str | None,
    ) -> AliasChange:
        """Move production to ``production``, deriving previous_production afresh."""
        pending = AliasChange(action, reason, "", "", before, Aliases(production, None))
        history = [*(AliasChange.from_dict(e) for e in index["history"]), pending]
        rejected = {v for v, s in index["versions"].items() if s.get("rejected")}
        after = Aliases(production, previous_of(history, production, rejected))
        return self._record(index, action, before, after, reason, actor)

    def _record(
        self,
        index: dict[str, Any],
        action: str,
        before: Aliases,
        after: Aliases,
        reason: str,
        actor: str | None,
    ) -> AliasChange:
        change = AliasChange(
            action=action,
            reason=reason,
            actor=actor or provenance.current_actor(),
            at=timestamp(self._clock()),
            before=before,
            after=after,
        )
        index["aliases"] = dataclasses.asdict(after)
        index["history"] = [*index["history"], dataclasses.asdict(change)]
        return change
