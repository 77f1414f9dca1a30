"""A production model whose artifact no longer verifies, and the way back from it.

An artifact can change after it was promoted: a flipped bit on disk, a truncated copy
from a restore, an edit by hand, a scikit-learn upgrade.  ``production_check`` says
whether production still verifies (``ModelRegistry.verify``: hashes and the
scikit-learn version, no deserialization), for ``status`` and the UI.
``ensure_verified_production`` is what every step calls before it uses production: if
production fails verification it rolls back, recorded in the alias history with the
reason, to the last earlier production model that loads, so a damaged artifact costs an
alert and a rollback, not every run until someone rolls back by hand.  When no earlier
production model loads either, it raises ``NoVerifiedModelError`` saying what to do.
"""

from __future__ import annotations

from dataclasses import dataclass

from training_pipeline.ml.artifacts import RegistryError
from training_pipeline.ml.registry import AliasError, ModelRegistry
from training_pipeline.ml.registry_store import AliasChange

VERIFICATION_ROLLBACK = "automatic rollback: production failed verification"
SUGGESTED = 5  # versions that verify, named in the error when nothing can be restored


class NoVerifiedModelError(RegistryError):
    """Production fails verification and no earlier production version can replace it."""


@dataclass(frozen=True)
class ProductionCheck:
    """Whether production verifies; ``verified`` is None when there is no production."""

    version: str | None
    verified: bool | None
    reason: str | None = None


@dataclass(frozen=True)
class Fallback:
    """Production ``failed`` did not verify (``reason``); ``restored`` replaced it."""

    failed: str
    reason: str
    restored: str
    change: AliasChange

    @property
    def message(self) -> str:
        return (
            f"production model {self.failed} failed verification ({self.reason}); rolled "
            f"back automatically to {self.restored}, the last earlier production model "
            "that verifies"
        )


def production_check(registry: ModelRegistry) -> ProductionCheck:
    production = registry.aliases().production
    if production is None:
        return ProductionCheck(None, None)
    try:
        registry.verify(production)
    except RegistryError as error:
        return ProductionCheck(production, False, str(error))
    return ProductionCheck(production, True)


def earlier_productions(history: list[AliasChange], current: str) -> list[str]:
    """Versions that left production because a newer one was promoted, most recent first.

    A version that left production through a rollback or a withdrawal was taken out for
    a reason (a failed smoke test, a person's decision) and is never restored from here.
    """
    seen, found = {current}, []
    for change in reversed(history):
        left = change.before.production
        if left is None or left == change.after.production or left in seen:
            continue
        seen.add(left)
        if change.action == "promote":
            found.append(left)
    return found


def ensure_verified_production(
    registry: ModelRegistry, actor: str | None = None, *, retries: int = 3
) -> Fallback | None:
    """Leave production on a model that verifies; roll back automatically if it does not.

    Returns:
        None when production verifies (or there is none); the rollback made otherwise.

    Raises:
        NoVerifiedModelError: no earlier production version loads; nothing was changed.
    """
    check = production_check(registry)
    if check.version is None or check.reason is None:  # verified, or no production
        return None
    refused = []
    for candidate in earlier_productions(registry.history(), check.version):
        reason = f"{VERIFICATION_ROLLBACK}: {check.reason}"
        try:
            change = registry.rollback(
                to=candidate, reason=reason, actor=actor, replacing=check.version, reject=False
            )
        except AliasError:
            if retries == 0:
                raise
            # Another run moved production meanwhile (this same rollback, or a promotion
            # of a new model): judge whatever is in production now.
            return ensure_verified_production(registry, actor, retries=retries - 1)
        except RegistryError as error:  # the candidate does not load either
            refused.append(f"{candidate}: {error}")
            continue
        return Fallback(check.version, check.reason, candidate, change)
    raise NoVerifiedModelError(_nothing_to_restore(registry, check, refused))


def _nothing_to_restore(registry: ModelRegistry, check: ProductionCheck, refused: list[str]) -> str:
    verifying = []
    for version in registry.versions():
        if len(verifying) == SUGGESTED:
            break
        try:
            registry.verify(version.version)
        except RegistryError:
            continue
        verifying.append(version.version)
    tried = f" (tried: {'; '.join(refused)})" if refused else ""
    choices = (
        f"versions that verify, newest first: {', '.join(verifying)}"
        if verifying
        else "no registered version verifies"
    )
    on_s3 = str(registry.root).startswith("s3://")
    where = f"prefix {registry.root}" if on_s3 else f"directory {registry.root}"
    return (
        f"production model {check.version} failed verification ({check.reason}) and no "
        f"earlier production version verifies{tried}; production was left unchanged and "
        "no run can compare with it or score with it. To recover, restore the registry "
        f"{where} from a backup, or put a version you trust into "
        f"production with `training-pipeline rollback --to VERSION` ({choices}), then "
        "rerun."
    )
