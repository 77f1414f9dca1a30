"""No work when nothing changed: a model is retrained only on a new training set or spec.

The training set's data version is its content hash, so Dagster can tell an unchanged
export from a new one; the candidate's automation condition asks for a changed one.
Runs started by hand, by a schedule or by a sensor do not consult conditions, so the
candidate also checks for itself: when the registry's newest version was trained on the
same bytes with the same declaration, it records why it trained nothing and produces no
output, and validation and promotion are skipped with it.
"""

from __future__ import annotations

import json

import dagster as dg

from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.spec.model_spec import ModelSpec

SPEC_FILE = "model_spec.json"  # stored with every version: the declaration it was trained on


def spec_record(spec: ModelSpec) -> bytes:
    record = {"spec_hash": spec.spec_hash, "spec": spec.model_dump(mode="json")}
    return (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()


def data_version(fingerprint: str) -> dg.DataVersion:
    return dg.DataVersion(fingerprint[:16])


def unchanged_reason(registry: ModelRegistry, fingerprint: str, spec_hash: str) -> str | None:
    """Why training again would be wasted, or None when it would not.

    Only a settled version stops a retraining: one the gate refused, or one that was
    promoted (and may since have been rolled back on purpose).  A version whose run died
    before its gate or its promotion is trained again, so the rerun finishes the job.
    """
    versions = registry.versions()
    if not versions or versions[0].data_fingerprint != fingerprint:
        return None
    newest = versions[0]
    try:
        recorded = json.loads(registry.read_file(newest.version, SPEC_FILE))
    except FileNotFoundError:
        return None  # registered before specs were recorded with the version
    if recorded["spec_hash"] != spec_hash:
        return None
    gate = newest.gate or {}
    promoted = any(change.after.production == newest.version for change in registry.history())
    if not gate or (gate.get("passed") and not promoted):
        return None
    verdict = "gate passed, promoted" if gate.get("passed") else "gate failed"
    return (
        f"training set {fingerprint[:12]} and spec {spec_hash[:12]} unchanged since "
        f"{newest.version} ({verdict}); nothing trained (run config force: true trains anyway)"
    )


def candidate_condition() -> dg.AutomationCondition:
    """Train when the training set's data version or the model's spec (its code version)
    changed, or the candidate was never built; never for a re-export of the same bytes."""
    condition = dg.AutomationCondition
    changed = (
        condition.any_deps_match(condition.data_version_changed())
        | condition.code_version_changed()
        | condition.newly_missing()
    ).since_last_handled()
    return (
        changed
        & ~condition.any_deps_missing()
        & ~condition.any_deps_in_progress()
        & ~condition.in_progress()
    ).with_label("training set or spec changed")
