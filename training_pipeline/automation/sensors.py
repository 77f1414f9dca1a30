"""The sensor that notices new data and requests the ingestion that takes it in.

It is built from the project's declared sources: one cursor entry per source, one probe
per kind (``automation/probes.py``).  It never opens the DuckDB warehouse, so it never
competes with a run for the warehouse's single writer slot.  Everything that changed
since the last look is requested in one run, so a day that brings news from several
sources is ingested, cleaned and featurized once, not once per source.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import dagster as dg

from training_pipeline.assets.source_common import raw_asset_key
from training_pipeline.assets.source_common import source_resource_key as resource_key_of
from training_pipeline.automation.policy import RetrainingPolicy
from training_pipeline.automation.probes import (
    PROBES,
    SourceUnavailable,
    Taken,
    first_entry,
    plausible_until,
)
from training_pipeline.spec.sources import Source

CURSOR_VERSION = 2


@dataclass(frozen=True)
class SensorCursor:
    """What the sensor saw last: one entry per declared source, by source name."""

    sources: dict[str, str | None] = field(default_factory=dict)
    converted_from: str | None = None  # why an older cursor was converted or dropped

    @classmethod
    def parse(cls, text: str | None, declared: Sequence[Source]) -> SensorCursor:
        if not text:
            return cls()
        stored = json.loads(text)
        if stored.get("version") == CURSOR_VERSION:
            return cls(dict(stored["sources"]))
        # A version-1 cursor named the fixed sources of one example; its entries mean
        # nothing to declared sources.  Probing them afresh requests each once, and
        # reading a source again loads nothing twice (content hashes, cursors).
        return cls(
            converted_from=f"a version-{stored.get('version', 1)} cursor was dropped: every "
            f"declared source ({len(declared)}) is probed afresh"
        )

    def dump(self) -> str:
        return json.dumps({"version": CURSOR_VERSION, "sources": self.sources}, sort_keys=True)


@dataclass(frozen=True)
class IngestionPlan:
    """Which raw assets to refresh, and a run key that names exactly what changed."""

    assets: tuple[dg.AssetKey, ...]
    changes: tuple[str, ...]

    @property
    def run_key(self) -> str:
        digest = hashlib.sha256("\n".join(sorted(self.changes)).encode()).hexdigest()
        return f"new-data-{digest[:24]}"


def plan_ingestion(changed: Sequence[tuple[Source, tuple[str, ...]]]) -> IngestionPlan:
    """The sources that moved, and every change each saw."""
    moved = [(source, changes) for source, changes in changed if changes]
    return IngestionPlan(
        tuple(dg.AssetKey(list(source.asset_key_path)) for source, _ in moved),
        tuple(change for _, changes in moved for change in changes),
    )


def look(
    context: dg.SensorEvaluationContext, declared: Sequence[Source]
) -> tuple[IngestionPlan, SensorCursor, list[str]]:
    """Probe every declared source; one that cannot be read holds back only itself."""
    seen = SensorCursor.parse(context.cursor, declared)
    notes = [seen.converted_from] if seen.converted_from else []
    if seen.converted_from:
        context.log.info(seen.converted_from)
    until = plausible_until(context.resources.row_contract.limits())
    changed: list[tuple[Source, tuple[str, ...]]] = []
    entries: dict[str, str | None] = {}
    for source in declared:
        resource = getattr(context.resources, resource_key_of(source))
        if source.name in seen.sources:
            before = seen.sources[source.name]
        else:
            before = first_entry(source, resource, last_taken(context.instance, source))
        try:
            probe = PROBES[source.kind](source, resource, before, until)
        except SourceUnavailable as error:
            context.log.warning(str(error))
            notes.append(str(error))
            entries[source.name] = before
            continue
        changed.append((source, probe.changes))
        entries[source.name] = probe.entry
    return plan_ingestion(changed), SensorCursor(entries), notes


def last_taken(instance: dg.DagsterInstance, source: Source) -> Taken | None:
    """What the raw asset's latest materialization says its batch took, if it has one."""
    record = instance.get_latest_materialization_event(raw_asset_key(source))
    if record is None or record.asset_materialization is None:
        return None
    cursor = record.asset_materialization.metadata.get("cursor_after")
    text = None if cursor is None or cursor.value == "(none)" else str(cursor.value)
    run = instance.get_run_record_by_id(record.run_id)
    started = run.start_time if run is not None and run.start_time else record.timestamp
    return Taken(text, started)


def build_new_data_sensor(
    policy: RetrainingPolicy, declared: Sequence[Source]
) -> dg.SensorDefinition:
    """The new-data sensor over ``declared``, looking every ``policy.sensor_interval_s``."""
    declared = tuple(declared)
    names = ", ".join(s.name for s in declared) or "none"

    # Invoked directly (tests), Dagster also passes the required resources by name; the
    # probes read them from ``context.resources`` either way.
    def look_for_new_data(context: dg.SensorEvaluationContext, **_: object) -> dg.SensorResult:
        plan, cursor, notes = look(context, declared)
        if not plan.assets:
            reason = "; ".join([f"nothing new in the declared sources ({names})", *notes])
            return dg.SensorResult(skip_reason=reason, cursor=cursor.dump())
        context.log.info(f"requesting {[k.to_user_string() for k in plan.assets]}: {plan.changes}")
        for note in notes:
            context.log.info(note)
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=plan.run_key,
                    asset_selection=list(plan.assets),
                    tags={"training_pipeline/trigger": "new data"},
                )
            ],
            cursor=cursor.dump(),
        )

    return dg.sensor(
        name="new_data_sensor",
        asset_selection=[dg.AssetKey(list(s.asset_key_path)) for s in declared],
        minimum_interval_seconds=policy.sensor_interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        required_resource_keys={"row_contract", *(resource_key_of(s) for s in declared)},
        description="Requests one ingestion run for whatever is new in the declared sources "
        f"({names}): files new or changed in a landing folder (by content hash), a table's "
        "newest cursor value or content fingerprint, an API feed's newest change. The run key "
        "names what changed, so an identical re-delivery launches nothing.",
    )(look_for_new_data)
