"""The operator's say over production: ``rollback``, ``pin`` and ``unpin``.

    training-pipeline rollback [--model NAME] [--to VERSION] [--reason TEXT] [--pin]
    training-pipeline pin [--model NAME] [--reason TEXT]
    training-pipeline unpin [--model NAME] [--reason TEXT]

Each change is recorded in the registry's alias history with who and why, shown on the
model's production asset in the Dagster UI, and alerted (log and webhook).  A rollback
rejects the version rolled back from: automation never promotes it, or a version
trained on the same training set, again.  While production is pinned automation trains
and validates, but promotes nothing.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from training_pipeline.settings import Settings

if TYPE_CHECKING:
    from training_pipeline.ml.registry import ModelRegistry
    from training_pipeline.ml.registry_store import AliasChange


def _announce(settings: Settings, model: str, registry: ModelRegistry, change: AliasChange) -> str:
    """Show the change in the UI and alert it; the line to print about the alert."""
    from training_pipeline.alerts import AlertDestination, deliver_once
    from training_pipeline.assets.alias_events import report_alias_change
    from training_pipeline.lifecycle_alerts import alias_change_alert

    report_alias_change(model, change)
    production = change.after.production
    metrics = registry.get(production).metrics if production else {}
    outcome = deliver_once(
        alias_change_alert(model, change, metrics), AlertDestination.of(settings)
    )
    if outcome is None or outcome.error is None:
        return ""
    return f"alert not delivered to the webhook: {outcome.error}"


def _change(args: argparse.Namespace, move) -> int:
    """Apply ``move(registry)`` to the chosen model; report and announce the changes."""
    from training_pipeline.components.models import ModelChoiceError, chosen_model
    from training_pipeline.ml.artifacts import RegistryError
    from training_pipeline.registries import registry_of

    settings = Settings.from_env()
    try:
        model = chosen_model(settings, args.model)
        registry = registry_of(settings, model)
        changes = move(registry)
    except (RegistryError, ModelChoiceError) as error:
        print(f"training-pipeline {args.command}: {error}", file=sys.stderr)
        return 1
    for change in changes:
        print(_describe(change))
        if warning := _announce(settings, model, registry, change):
            print(f"training-pipeline {args.command}: {warning}", file=sys.stderr)
    return 0


def _describe(change: AliasChange) -> str:
    recorded = f"recorded as {change.reason!r} by {change.actor}"
    if change.action == "rollback":
        return (
            f"rolled back: production is now {change.after.production} (was "
            f"{change.before.production}); {change.before.production} is rejected: automation "
            "never promotes it, or a version trained on the same data, again; previous "
            f"production: {change.after.previous_production or 'none'}; {recorded}"
        )
    if change.action == "pin":
        return f"pinned: production stays {change.after.production} until unpinned; {recorded}"
    return f"unpinned: automation may promote again; {recorded}"


def _rollback(args: argparse.Namespace) -> int:
    def move(registry: ModelRegistry) -> list[AliasChange]:
        changes = [registry.rollback(to=args.to, reason=args.reason)]
        if args.pin:
            changes.append(registry.pin(reason=args.reason))
        return changes

    return _change(args, move)


def _pin(args: argparse.Namespace) -> int:
    return _change(args, lambda registry: [registry.pin(reason=args.reason)])


def _unpin(args: argparse.Namespace) -> int:
    return _change(args, lambda registry: [registry.unpin(reason=args.reason)])


def add_lifecycle_commands(commands: argparse._SubParsersAction, wrap, add_model_option) -> None:
    """``wrap`` reports a wrong declaration; ``add_model_option`` adds ``--model``."""
    rollback = commands.add_parser(
        "rollback",
        help="put the previous production model (or --to VERSION) back into production",
        description=(
            "The version restored is verified exactly as on promotion (hash, scikit-learn "
            "version, trusted types) before production moves; nothing changes otherwise. "
            "The version rolled back from is rejected: automation never promotes it, or a "
            "version trained on the same training set, again. --pin also pins production."
        ),
    )
    add_model_option(rollback)
    rollback.add_argument("--to", metavar="VERSION", help="restore this version instead")
    rollback.add_argument("--reason", default="rollback", help="recorded in the alias history")
    rollback.add_argument(
        "--pin", action="store_true", help="pin production afterwards (see `pin`)"
    )
    rollback.set_defaults(handler=wrap(_rollback))
    for name, handler, help_text in (
        ("pin", _pin, "hold production where it is: automation trains and validates, "
         "but promotes nothing until `unpin`"),
        ("unpin", _unpin, "let automation promote again"),
    ):  # fmt: skip
        command = commands.add_parser(name, help=help_text, description=help_text)
        add_model_option(command)
        command.add_argument("--reason", default=name, help="recorded in the alias history")
        command.set_defaults(handler=wrap(handler))
