"""What is in production and what came before: the data behind ``training-pipeline status``.

``registry_status`` reads the registry index and verifies the production artifact
(``ModelRegistry.verify``: its hash and scikit-learn version, without deserializing it),
so a damaged production model is reported, never shown as if it were fine; the other
versions are listed from the index alone.

``training-pipeline status --json`` prints this object; its keys are stable within a
``schema_version`` (new keys may be added; renaming or removing one bumps the version;
``production_verified``, ``production_verification_error``, ``pinned`` and ``rejected``
were added within 1)::

    {
      "schema_version": 1,
      "registry": "/abs/path/to/models",
      "production": null | {
        "version": "v20250301T120000-3f2a9c1b7d4e",
        "family": "hist_gradient_boosting",
        "created_at": "2025-03-01T12:00:00.000000+00:00",   # trained at, UTC
        "metrics": {"roc_auc": 0.81, ...},                  # as given at registration
        "trained_on": ["orders_2025-02-27.csv", ...],       # raw batches / files
        "data_fingerprint": "...",
        "code_version": "<git commit>" | "unknown",
        "sha256": "<hex digest of model.skops>",
        "gate": null | {...},                               # the gate's decision dict
        "gate_recorded_at": null | "<ISO 8601 UTC>",
        "promoted_at": null | "<ISO 8601 UTC>",             # the alias change that
        "promoted_by": null | "<login name>",               #   made it production
        "promotion_reason": null | "promoted" | "rollback" | ...
      },
      "production_verified": null | true | false,           # null: no production
      "production_verification_error": null | "<why production failed verification>",
      "previous_production": null | "<version>",
      "pinned": null | {"version", "actor", "at", "reason"},  # automation promotes nothing
      "total_versions": 7,
      "versions": [                                         # newest first, at most N
        {"version", "family", "created_at", "metrics", "gate", "gate_recorded_at",
         "rejected": null | {"actor", "at", "reason"},      # rolled back from
         "aliases": ["production"] | ["previous_production"] | []}
      ],
      "recent_changes": [                                   # newest first, at most N
        {"at", "action": "promote" | "rollback" | "withdraw" | "pin" | "unpin",
         "reason", "actor",
         "production_before", "production_after"}
      ]
    }
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping
from typing import Any

from training_pipeline.ml.recovery import production_check
from training_pipeline.ml.registry import ModelRegistry, ModelVersion

SCHEMA_VERSION = 1
# Shown first, in this order, when present; other scalar metrics follow by name.
KEY_METRICS = (
    *("roc_auc", "pr_auc", "average_precision", "log_loss", "brier", "f1"),
    *("rmse", "mae", "r2"),
)


def registry_status(registry: ModelRegistry, last: int = 5) -> dict[str, Any]:
    """The status object documented above, with the ``last`` newest versions and changes."""
    aliases = registry.aliases()
    versions = registry.versions()
    history = registry.history()
    production: dict[str, Any] | None = None
    if aliases.production is not None:
        current = registry.get(aliases.production)
        made = next((c for c in reversed(history) if c.after.production == current.version), None)
        production = {
            **_version_entry(current),
            "trained_on": list(current.trained_on),
            "data_fingerprint": current.data_fingerprint,
            "code_version": current.code_version,
            "sha256": current.sha256,
            "promoted_at": made.at if made else None,
            "promoted_by": made.actor if made else None,
            "promotion_reason": made.reason if made else None,
        }
    labels = {aliases.production: "production", aliases.previous_production: "previous_production"}
    check = production_check(registry)
    return {
        "schema_version": SCHEMA_VERSION,
        "registry": registry.store.describe(),
        "production": production,
        "production_verified": check.verified,
        "production_verification_error": check.reason,
        "previous_production": aliases.previous_production,
        "pinned": None if (pin := registry.pinned()) is None else dataclasses.asdict(pin),
        "total_versions": len(versions),
        "versions": [
            {**_version_entry(v), "aliases": [labels[v.version]] if v.version in labels else []}
            for v in versions[:last]
        ],
        "recent_changes": [
            {
                "at": change.at,
                "action": change.action,
                "reason": change.reason,
                "actor": change.actor,
                "production_before": change.before.production,
                "production_after": change.after.production,
            }
            for change in reversed(history[-last:] if last else [])
        ],
    }


def format_status(status: Mapping[str, Any]) -> str:
    """The status object as a few lines for a person at a terminal."""
    lines = [f"registry: {status['registry']}"]
    production = status["production"]
    if production is None:
        lines.append("production: none")
    else:
        batches = production["trained_on"]
        lines += [
            f"production: {production['version']} ({production['family']})",
            f"  trained at: {production['created_at']}",
            f"  metrics:    {format_metrics(production['metrics']) or 'none recorded'}",
            f"  trained on: {len(batches)} batch(es){': ' if batches else ''}"
            + _abbreviate(batches),
            f"  gate:       {gate_verdict(production['gate'])}",
        ]
        if status["production_verified"] is False:
            lines[-4:-4] = [
                "  !! FAILED VERIFICATION: " + status["production_verification_error"],
                "  !! the next run rolls back to the last earlier production model that "
                "verifies; `training-pipeline rollback --to VERSION` chooses one now",
            ]
        if production["promoted_at"]:
            lines.append(
                f"  since:      {production['promoted_at']} by {production['promoted_by']}"
                f" ({production['promotion_reason']})"
            )
    lines.append(f"previous production: {status['previous_production'] or 'none'}")
    if pin := status["pinned"]:
        lines.append(
            f"PINNED to {pin['version']} by {pin['actor']} at {pin['at']} ({pin['reason']}): "
            "automation does not promote until `training-pipeline unpin`"
        )
    shown, total = len(status["versions"]), status["total_versions"]
    lines.append(f"last {shown} of {total} version(s):" if total else "no versions registered")
    for entry in status["versions"]:
        marker = "*" if "production" in entry["aliases"] else " "
        rejected = entry["rejected"]
        lines.append(
            f"  {marker} {entry['version']}  {entry['family']}  {entry['created_at'][:19]}"
            f"  {format_metrics(entry['metrics'], limit=2)}  gate: {gate_verdict(entry['gate'])}"
            + (f"  REJECTED by {rejected['actor']} ({rejected['reason']})" if rejected else "")
        )
    return "\n".join(lines)


def format_metrics(metrics: Mapping[str, Any], limit: int | None = None) -> str:
    """Scalar metrics, key metrics first, as ``name 0.8123``; nested values are left out."""
    scalars = {
        name: value
        for name, value in metrics.items()
        if isinstance(value, numbers.Real) and not isinstance(value, bool)
    }
    order = [name for name in KEY_METRICS if name in scalars]
    order += sorted(set(scalars) - set(order))
    return ", ".join(f"{name} {scalars[name]:.4g}" for name in order[:limit])


def gate_verdict(decision: Mapping[str, Any] | None) -> str:
    """``passed``/``failed`` from a gate decision's ``passed`` flag, else its ``decision``;
    with the paired difference to the champion on the same rows when there was one, so a
    version is read against its champion, not against another version's holdout."""
    if decision is None:
        return "not recorded"
    if not isinstance(decision.get("passed"), bool):
        return str(decision.get("decision", "recorded"))
    verdict = "passed" if decision["passed"] else "failed"
    interval = decision.get("interval")
    if not interval:
        return verdict
    return (
        f"{verdict} ({interval['metric']} {interval['difference']:+.4f} vs champion on "
        f"{interval['n_rows']} shared rows, {interval['confidence']:.0%} CI "
        f"{interval['low']:+.4f} to {interval['high']:+.4f}: {interval['verdict']})"
    )


def _version_entry(version: ModelVersion) -> dict[str, Any]:
    return {
        "version": version.version,
        "family": version.family,
        "created_at": version.created_at,
        "metrics": dict(version.metrics),
        "gate": None if version.gate is None else dict(version.gate),
        "gate_recorded_at": version.gate_recorded_at,
        "rejected": None if version.rejected is None else dataclasses.asdict(version.rejected),
    }


def _abbreviate(items: list[str], keep: int = 3) -> str:
    if len(items) <= 2 * keep:
        return ", ".join(items)
    return ", ".join([*items[:keep], "...", *items[-keep:]])
