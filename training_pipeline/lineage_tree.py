"""``training-pipeline lineage`` without ``--json``: the chain as an indented tree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training_pipeline.lineage_record import Batch, Lineage


def format_lineage(lineage: Lineage) -> str:
    """The chain as an indented tree for a person at a terminal."""
    model, dataset = lineage.model, lineage.training_set
    aliases = "".join(f", {a}" for a in lineage.aliases)
    present = "" if Path(dataset.path).exists() else "  (file no longer present)"
    batches = [_batch_node(batch) for batch in lineage.batches]
    if lineage.missing_batches:
        batches.append((f"not in the warehouse: {', '.join(lineage.missing_batches)}", []))
    tree = (
        f"model {model.version} ({model.family}{aliases}; created {model.created_at})",
        [
            (
                f"training set {dataset.path}{present}",
                [
                    (f"sha256 {dataset.fingerprint}", []),
                    (
                        f"{dataset.rows} rows, {dataset.snapshots} snapshots "
                        f"({dataset.first_snapshot} to {dataset.last_snapshot})",
                        [],
                    ),
                    (f"{len(lineage.batches)} ingestion batch(es) in {lineage.warehouse}", batches),
                ],
            )
        ],
    )
    return "\n".join(_render(tree))


_Node = tuple[str, list[Any]]


def _batch_node(batch: Batch) -> _Node:
    label = (
        f"{batch.batch_id} ({batch.source}, {batch.started_at}, {batch.rows_loaded} rows, "
        f"run {batch.run_id or 'none'})"
    )
    children: list[_Node] = [
        (
            f"file {f.path}  sha256 {(f.sha256 or '?')[:12]}  "
            f"{f.rows_loaded if f.rows_loaded is not None else '?'} rows  "
            f"{f.status or 'not in raw.file_manifest'}" + (f": {f.reason}" if f.reason else ""),
            [],
        )
        for f in batch.files
    ]
    children += [
        (f"page {p.page} GET {p.request}  {p.rows_loaded} rows", []) for p in batch.api_pages
    ]
    children += [(f"query {q.query}  {q.rows_loaded} rows", []) for q in batch.db_queries]
    children += [(f"ref {ref}", []) for ref in batch.other_refs]
    return label, children


def _render(node: _Node, prefix: str = "", child_prefix: str = "") -> list[str]:
    label, children = node
    lines = [prefix + label]
    for i, child in enumerate(children):
        last = i == len(children) - 1
        lines += _render(
            child,
            child_prefix + ("└── " if last else "├── "),
            child_prefix + ("    " if last else "│   "),
        )
    return lines
