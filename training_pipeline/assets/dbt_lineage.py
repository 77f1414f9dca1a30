"""dbt models' column lineage, computed once per compiled SQL and column schemas.

dagster-dbt derives each built model's column lineage (which upstream columns every
column reads) with sqlglot, from the model's compiled SQL and the column schemas the
post-hook logged (``macros/log_column_metadata.sql``: the model's and its parents'),
on every build: 2.4-2.8 s of CPU for the demo's 11 models (``scripts/bench_lineage.py``),
the same answer every run while the SQL and the schemas stay the same.  The answer
depends on nothing else but the parents' asset keys and the lineage code's versions, so
it is kept under a hash of all of them: a build whose inputs match a kept answer reuses
it, and any change (an edited model, a new column, a new dagster-dbt or sqlglot) misses
and is computed by dagster-dbt exactly as before, then kept.

The folder is the project's (its dbt target folder, beside the manifest), not a
warehouse's, so every data directory of a project shares it: a fresh demo, the test
suite's warehouses, each run a daemon launches.  Files are named by their content's
inputs and replaced atomically, so concurrent runs can only write the same answer.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt.core.dbt_cli_event import DbtCliEventMessage
from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation

from training_pipeline.ml.artifacts import atomic_write_bytes

LINEAGE = "dagster/column_lineage"
FOLDER = "column_lineage"
# Another version of the lineage code may answer differently from the same inputs.
_LINEAGE_CODE = tuple(
    f"{package}=={importlib.metadata.version(package)}" for package in ("dagster-dbt", "sqlglot")
)

DbtEvent = (
    dg.Output
    | dg.AssetMaterialization
    | dg.AssetObservation
    | dg.AssetCheckResult
    | dg.AssetCheckEvaluation
)


def stream_with_kept_lineage(invocation: DbtCliInvocation, folder: Path) -> Iterator[DbtEvent]:
    """The events ``invocation.stream()`` yields, each model's column lineage read from
    ``folder`` when it was computed before from the same inputs, and kept there when not."""
    for event in invocation.stream_raw_events():
        key = lineage_key(event, invocation)
        kept = read_lineage(folder, key) if key else None
        if kept is not None:
            # Without its parents' schemas dagster-dbt computes no lineage for the event.
            event = replace(event, event_history_metadata=_history_without_parents(event))
        for dagster_event in event.to_default_asset_events(
            manifest=invocation.manifest,
            dagster_dbt_translator=invocation.dagster_dbt_translator,
            context=invocation.context,
            target_path=invocation.target_path,
            project=invocation.project,
        ):
            if key is not None and isinstance(dagster_event, dg.Output | dg.AssetMaterialization):
                if kept is not None:
                    dagster_event = dagster_event.with_metadata(
                        {**dagster_event.metadata, LINEAGE: kept}
                    )
                elif (computed := dagster_event.metadata.get(LINEAGE)) is not None:
                    _keep(folder, key, computed)
            yield dagster_event


def lineage_key(event: DbtCliEventMessage, invocation: DbtCliInvocation) -> str | None:
    """The hash of everything a model's lineage is computed from; None for an event
    that carries no lineage inputs (a test, a model built without the post-hook)."""
    if not event.is_result_event or not event.has_column_lineage_metadata:
        return None
    manifest = invocation.manifest
    unique_id = event.raw_event["data"]["node_info"]["unique_id"]
    node = manifest["nodes"].get(unique_id)
    if node is None:
        return None
    compiled = (
        invocation.target_path / "compiled" / node["package_name"] / node["original_file_path"]
    )
    if not compiled.is_file():
        return None
    parents = []
    for parent_id in node["depends_on"]["nodes"]:
        parent = manifest["sources" if parent_id.startswith("source.") else "nodes"][parent_id]
        asset_key = invocation.dagster_dbt_translator.get_asset_spec(
            manifest, parent_id, invocation.project
        ).key
        parents.append([parent_id, parent["relation_name"], asset_key.to_user_string()])
    inputs = {
        "lineage_code": _LINEAGE_CODE,
        "dialect": manifest["metadata"]["adapter_type"],
        "node": [unique_id, node["resource_type"], node["relation_name"]],
        "parents": parents,
        "schemas": _history(event),
        "sql": compiled.read_text(encoding="utf-8"),
    }
    encoded = json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


def read_lineage(folder: Path, key: str) -> dg.MetadataValue | None:
    path = folder / f"{key}.json"
    if not path.is_file():
        return None
    value = dg.deserialize_value(path.read_text(encoding="utf-8"))
    if not isinstance(value, dg.TableColumnLineageMetadataValue):
        raise ValueError(f"{path} holds a {type(value).__name__}, not a column lineage")
    return value


def write_lineage(folder: Path, key: str, lineage: dg.MetadataValue) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    # Readable by every user whose runs share the project, as dbt's target files are.
    atomic_write_bytes(folder / f"{key}.json", dg.serialize_value(lineage).encode(), 0o644)


def _keep(folder: Path, key: str, lineage: dg.MetadataValue) -> None:
    """Keep a computed lineage; where the project folder is read-only (an image's), the
    build still carries its lineage and the next one computes it again, with a warning."""
    try:
        write_lineage(folder, key, lineage)
    except OSError as error:
        dg.get_dagster_logger().warning(
            f"column lineage not kept in {folder} ({error}): the next build computes it again"
        )


def _history(event: DbtCliEventMessage) -> Mapping[str, Any]:
    # What the post-hook logged for the node; dagster-dbt keeps it on the event and has
    # no public accessor for it (its own lineage code reads the same attribute).
    return event._event_history_metadata  # noqa: SLF001


def _history_without_parents(event: DbtCliEventMessage) -> dict[str, Any]:
    return {name: value for name, value in _history(event).items() if name != "parents"}
