"""What the validation and production assets show about a model version.

Per version the pair that matters: challenger and champion measured on the same holdout
rows, their difference and the paired interval of it, the holdout itself, and links to
the report, model card and trial history.  Numbers are floats, so Dagster plots them
over materializations; files are given both as a path (to copy) and as a ``file://``
URL (a link the UI renders, which opens where the browser can read the registry); on an
S3 registry both are the object's ``s3://`` URI.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import dagster as dg

from training_pipeline.ml.metrics import METRICS

if TYPE_CHECKING:
    from training_pipeline.ml.evaluation import Metrics
    from training_pipeline.ml.registry import ModelRegistry

REPORT, MODEL_CARD, TRIAL_HISTORY = "report.html", "model_card.md", "trial_history.html"
LINKED_FILES = {"report": REPORT, "model_card": MODEL_CARD, "trial_history": TRIAL_HISTORY}


def file_links(
    registry: ModelRegistry, version: str, names: Mapping[str, str] = LINKED_FILES
) -> dict[str, Any]:
    """``<name>`` (a path) and ``<name>_url`` (a link) for each file ``version`` has."""
    links: dict[str, Any] = {}
    for key, name in names.items():
        if registry.has_file(version, name):
            links[key] = dg.MetadataValue.path(str(registry.file_location(version, name)))
            links[f"{key}_url"] = dg.MetadataValue.url(registry.file_url(version, name))
    return links


def _decision_values(metrics: Metrics) -> dict[str, float | None]:
    values: dict[str, float | None] = dict(metrics.values)
    if metrics.threshold is not None:
        values |= {
            "precision": metrics.precision,
            "recall": metrics.recall,
            "threshold": metrics.threshold,
        }
    return values


def pair_metadata(challenger: Metrics, champion: Metrics | None) -> dict[str, float]:
    """``challenger_<m>``, ``champion_<m>`` and ``delta_<m>`` (challenger - champion) per
    measured value, on the same holdout rows; only the challenger's without a champion."""
    new = _decision_values(challenger)
    old = {} if champion is None else _decision_values(champion)
    pair: dict[str, float] = {}
    for name, value in new.items():
        if value is None:
            continue
        pair[f"challenger_{name}"] = float(value)
        if old.get(name) is not None:
            pair[f"champion_{name}"] = float(old[name])  # type: ignore[arg-type]
            pair[f"delta_{name}"] = float(value) - float(old[name])  # type: ignore[arg-type]
    return pair


def interval_metadata(interval: Mapping[str, Any] | None) -> dict[str, Any]:
    """The paired interval of the gate metric's difference, or nothing without a champion."""
    if interval is None:
        return {}
    metric = interval["metric"]
    return {
        f"delta_{metric}_low": float(interval["low"]),
        f"delta_{metric}_high": float(interval["high"]),
        "interval_confidence": float(interval["confidence"]),
        "interval_verdict": str(interval["verdict"]),
        "interval_resamples": int(interval["resamples"]),
    }


def stored_numbers(metrics: Mapping[str, Any]) -> dict[str, float]:
    """A version's registered metrics that are single numbers, as floats: the holdout
    metrics, threshold, precision, recall, label mean and the CV score."""
    return {
        name: float(value)
        for name, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and name != "n_rows"
    }


def production_metadata(
    version: str,
    family: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, Any],
    training_set_sha256: str,
    gate: Mapping[str, Any] | None,
    registry: ModelRegistry,
) -> dict[str, Any]:
    """Everything the production asset's page shows about the model in production."""
    interval = None if gate is None else gate.get("interval")
    links = file_links(registry, version)
    if "model_card" in links:
        # The card itself is shown as markdown; its file keeps a path beside the link.
        links["model_card_file"] = links.pop("model_card")
    metadata: dict[str, Any] = {
        **stored_numbers(metrics),
        "holdout_rows": int(metrics.get("n_rows", 0)),
        "family": family,
        "params": dg.MetadataValue.json(dict(params)),
        "training_set_sha256": training_set_sha256,
        **interval_metadata(interval),
        **links,
    }
    if interval is not None:
        label = METRICS[interval["metric"]].label
        metadata["vs_champion"] = (
            f"{label} {interval['challenger']:.4f} vs {interval['champion']:.4f} at promotion: "
            f"difference {interval['difference']:+.4f} ({interval['verdict']})"
        )
    if "model_card_file" in links:
        card = registry.read_file(version, MODEL_CARD).decode("utf-8")
        metadata["model_card"] = dg.MetadataValue.md(card)
    return {"production": version, **metadata}
