"""CPU of the dbt step's column lineage: dagster-dbt's every build against the kept one.

    .venv/bin/python scripts/bench_lineage.py <data>/dbt [examples/dbt/target/manifest.json]

Replays the model results of the last ``dbt build`` logged in a warehouse's dbt state
folder (``<data>/dbt``: its ``dbt.log`` holds what the post-hook logged per model, its
``compiled/`` the SQL) through dagster-dbt's own conversion, which computes every
model's lineage with sqlglot, and through ``assets/dbt_lineage.py`` with an empty then
a filled folder of kept lineage; prints the CPU of each (this process, ``getrusage``)
and whether all give the same lineage.  No dbt runs.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage

from training_pipeline.assets.dbt_lineage import LINEAGE, stream_with_kept_lineage
from training_pipeline.assets.dbt_translator import TrainingPipelineDbtTranslator
from training_pipeline.settings import DEFAULT_PROJECT_DIR, PROJECT_DBT_TARGET


def logged_models(state: Path) -> list[tuple[dict, dict]]:
    """(a model's result event, what its post-hook logged) for each model of the log."""
    found = []
    for line in (state / "dbt.log").read_text().splitlines():
        if not line.startswith("{"):
            continue
        raw = json.loads(line)
        if raw["info"]["name"] != "JinjaLogInfo":
            continue
        node = {"unique_id": raw["data"]["node_info"]["unique_id"], "node_status": "success"}
        result = {
            "info": {"name": "LogModelResult", "msg": "OK", "invocation_id": "bench"},
            "data": {"node_info": node | {"materialized": "table"}, "status": "success"},
        }
        found.append((result, json.loads(raw["info"]["msg"])))
    return found


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("state", type=Path, help="a warehouse's dbt state folder (<data>/dbt)")
    default_manifest = DEFAULT_PROJECT_DIR / PROJECT_DBT_TARGET / "manifest.json"
    parser.add_argument("manifest", type=Path, nargs="?", default=default_manifest)
    args = parser.parse_args(argv)
    manifest = json.loads(args.manifest.read_text())
    models = logged_models(args.state)
    translator = TrainingPipelineDbtTranslator()
    kept = Path(tempfile.mkdtemp(prefix="kept-lineage-"))

    def events() -> list[DbtCoreCliEventMessage]:
        return [
            DbtCoreCliEventMessage(raw_event=result, event_history_metadata=json.loads(logged))
            for result, logged in ((r, json.dumps(h)) for r, h in models)
        ]

    def every_build() -> list:
        return [
            event
            for message in events()
            for event in message.to_default_asset_events(
                manifest=manifest, dagster_dbt_translator=translator, target_path=args.state
            )
        ]

    def with_kept() -> list:
        invocation = SimpleNamespace(
            stream_raw_events=lambda: iter(events()),
            manifest=manifest,
            dagster_dbt_translator=translator,
            context=None,
            target_path=args.state,
            project=None,
        )
        return list(stream_with_kept_lineage(invocation, kept))

    start = cpu_s()
    every_build()
    # A run pays this once: dagster-dbt's lineage plus sqlglot's and Dagster's first use.
    print(
        f"{'dagster-dbt (first in process)':<30} {len(models)} models: {cpu_s() - start:6.2f} s CPU"
    )
    runs: list[tuple[str, Callable[[], list]]] = [
        ("dagster-dbt (every build)", every_build),
        ("kept, first build (computes)", with_kept),
        ("kept, later builds (reads)", with_kept),
    ]
    lineages = []
    for name, build in runs:
        start = cpu_s()
        built = build()
        spent = cpu_s() - start
        lineages.append({e.asset_key.to_user_string(): e.metadata.get(LINEAGE) for e in built})
        print(f"{name:<30} {len(built)} models: {spent:6.2f} s CPU")
    same = all(lineage == lineages[0] for lineage in lineages)
    print(f"same lineage for every model: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
