"""What a person reads about a model version: the validation report and the model card.

The HTML report is Evidently's classification report with the challenger as the current
data and the champion, scored on the very same holdout rows, as the reference, so every
Evidently plot compares the two; our comparison table and the gate's reasons are put at
the top.  It is self-contained (no CDN), so it opens offline.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from training_pipeline.ml.evaluation import GateDecision, Metrics
from training_pipeline.ml.feature_spec import FeatureSpec

# Evidently is imported where it is used: it takes seconds to import, and every Dagster
# run process loads all the definitions, most of which never draw a report.
if TYPE_CHECKING:
    from evidently import Dataset

_ROWS = (
    ("ROC AUC", "roc_auc", True),
    ("PR AUC", "pr_auc", True),
    ("log loss", "log_loss", False),
    ("Brier score", "brier", False),
    ("F1 at threshold", "f1", True),
    ("precision", "precision", True),
    ("recall", "recall", True),
    ("threshold", "threshold", None),
)


def comparison_rows(challenger: Metrics, champion: Metrics | None) -> list[tuple[str, ...]]:
    """(metric, challenger, champion, difference) rows, formatted for people."""
    rows = []
    for label, key, _ in _ROWS:
        new = getattr(challenger, key)
        old = None if champion is None else getattr(champion, key)
        diff = "" if old is None else f"{new - old:+.4f}"
        rows.append((label, f"{new:.4f}", "—" if old is None else f"{old:.4f}", diff))
    return rows


def comparison_markdown(
    challenger: Metrics,
    champion: Metrics | None,
    decision: GateDecision,
    challenger_version: str,
    champion_version: str | None,
) -> str:
    verdict = "PASSED" if decision.passed else "FAILED"
    lines = [
        f"**Gate {verdict}** — challenger `{challenger_version}` vs champion "
        f"`{champion_version or 'none'}` on the same {challenger.n_rows} holdout rows",
        "",
        "| metric | challenger | champion | difference |",
        "| --- | ---: | ---: | ---: |",
        *(f"| {' | '.join(row)} |" for row in comparison_rows(challenger, champion)),
        "",
        *(f"- {reason}" for reason in decision.reasons),
    ]
    return "\n".join(lines)


def _comparison_html(markdown_lines: str) -> str:
    """The comparison as HTML, from the same rows as the markdown."""
    body = []
    for line in markdown_lines.splitlines():
        if line.startswith("| ---"):
            continue
        if line.startswith("|"):
            cells = [html.escape(c.strip()) for c in line.strip("|").split("|")]
            body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        elif line.startswith("- "):
            body.append(f"<p>{html.escape(line[2:])}</p>")
        elif line:
            body.append(f"<h2>{html.escape(line.replace('**', '').replace('`', ''))}</h2>")
    table = "".join(b for b in body if b.startswith("<tr>"))
    other = "".join(b for b in body if not b.startswith("<tr>"))
    return (
        '<section style="font-family: sans-serif; margin: 16px">'
        f'{other}<table border="1" cellpadding="4">{table}</table></section>'
    )


def _scored(holdout: pd.DataFrame, spec: FeatureSpec, scores: np.ndarray) -> Dataset:
    from evidently import BinaryClassification, DataDefinition, Dataset

    frame = pd.DataFrame(
        {spec.label: holdout[spec.label].astype(int).to_numpy(), "churn_probability": scores}
    )
    definition = DataDefinition(
        classification=[
            BinaryClassification(
                target=spec.label, prediction_probas="churn_probability", pos_label=1
            )
        ],
        numerical_columns=["churn_probability"],
    )
    return Dataset.from_pandas(frame, data_definition=definition)


def validation_report_html(
    holdout: pd.DataFrame,
    spec: FeatureSpec,
    challenger_scores: np.ndarray,
    champion_scores: np.ndarray | None,
    comparison: str,
) -> str:
    """Evidently's classification report, challenger vs champion, with our table on top."""
    from evidently import Report
    from evidently.presets import ClassificationPreset

    report = Report([ClassificationPreset()])
    snapshot = report.run(
        current_data=_scored(holdout, spec, challenger_scores),
        reference_data=None if champion_scores is None else _scored(holdout, spec, champion_scores),
    )
    page = snapshot.get_html_str(as_iframe=False)
    marker = page.find("<body")
    insert_at = page.find(">", marker) + 1 if marker >= 0 else 0
    return page[:insert_at] + _comparison_html(comparison) + page[insert_at:]


def model_card(
    *,
    version: str,
    family: str,
    params: dict,
    spec: FeatureSpec,
    metrics: Metrics,
    decision: GateDecision,
    data: dict,
) -> str:
    """A markdown model card: what the model is for, what it saw, how well it does."""
    slices = "\n".join(
        f"| {s.column} | {s.value} | {s.n_rows} | {s.positive_rate:.3f} | "
        f"{'—' if s.roc_auc is None else f'{s.roc_auc:.3f}'} |"
        for s in metrics.slices
    )
    calibration = "\n".join(
        f"| {b.mean_predicted:.3f} | {b.observed_rate:.3f} | {b.n_rows} |"
        for b in metrics.calibration
    )
    return f"""# Model card: churn model `{version}`

## Intended use
Scores active customers (an order in the 90 days before the snapshot) with the
probability that they place **no order in the {spec.label_window_days} days after** the
snapshot (`{spec.label}`), so retention work can be aimed at the likeliest churners.

## Model
- family: `{family}` (scikit-learn pipeline: imputation and encoding travel with it)
- hyperparameters: `{params}`
- features: numeric {list(spec.numeric)}; categorical {list(spec.categorical)}

## Data
- training rows: {data.get("train_rows")}, snapshots {data.get("train_snapshots")}
- holdout rows: {data.get("holdout_rows")}, snapshots {data.get("holdout_snapshots")}
  (the most recent labelled snapshots, never seen during tuning)
- training data fingerprint: `{data.get("fingerprint")}`
- raw batches behind it: {data.get("batch_count")}

## Holdout metrics
| metric | value |
| --- | ---: |
{chr(10).join(f"| {label} | {getattr(metrics, key):.4f} |" for label, key, _ in _ROWS)}

Gate: **{"passed" if decision.passed else "failed"}** — {"; ".join(decision.reasons)}

## Slices
| column | value | rows | churn rate | ROC AUC |
| --- | --- | ---: | ---: | ---: |
{slices}

## Calibration (holdout, deciles of predicted probability)
| mean predicted | observed churn | rows |
| ---: | ---: | ---: |
{calibration}

## Limitations
- Features are computed as of each weekly snapshot; behaviour that changes faster than a
  week is seen late.
- A customer who is merely slow to reorder looks like a churner for 30 days: the label is
  a proxy, not a cancellation.
- Slices with few rows or a single class have unreliable metrics (AUC shown as —).
- No fairness review has been done on age or country; do not use the score for decisions
  about individuals beyond retention outreach.
"""
