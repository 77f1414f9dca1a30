"""What a person reads about a model version: the validation report and the model card.

The HTML report is Evidently's classification or regression report with the challenger
as the current data and the champion, scored on the very same holdout rows, as the
reference, so every Evidently plot compares the two; Evidently's "current" and
"reference" are renamed challenger and champion, and its threshold metrics are taken at
the challenger's chosen decision threshold (not Evidently's 0.5), so they agree with
our table.  Our comparison table, the paired interval and the gate's reasons are put at
the top.  It is self-contained (no CDN), so it opens offline.
The card's wording comes from the problem spec: nothing here knows what is predicted.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from training_pipeline.ml.evaluation import GateDecision, Metrics
from training_pipeline.ml.metrics import METRICS
from training_pipeline.ml.problem import ProblemSpec

# Evidently is imported where it is used: it takes seconds to import, and every Dagster
# run process loads all the definitions, most of which never draw a report.
if TYPE_CHECKING:
    from evidently import Dataset


def _rows(metrics: Metrics) -> list[tuple[str, str]]:
    """(label, key) per measured value: the task's metrics, then threshold-derived ones."""
    rows = [(METRICS[name].label, name) for name in metrics.values]
    if metrics.threshold is not None:
        rows += [("precision", "precision"), ("recall", "recall"), ("threshold", "threshold")]
    return rows


def _value(metrics: Metrics, key: str) -> float | None:
    if key in metrics.values:
        return metrics.values[key]
    return getattr(metrics, key)


def comparison_rows(challenger: Metrics, champion: Metrics | None) -> list[tuple[str, ...]]:
    """(metric, challenger, champion, difference) rows, formatted for people."""
    rows = []
    for label, key in _rows(challenger):
        new = _value(challenger, key)
        old = None if champion is None else _value(champion, key)
        diff = "" if old is None or new is None else f"{new - old:+.4f}"
        shown = "—" if new is None else f"{new:.4f}"
        rows.append((label, shown, "—" if old is None else f"{old:.4f}", diff))
    return rows


def comparison_markdown(
    challenger: Metrics,
    champion: Metrics | None,
    decision: GateDecision,
    challenger_version: str,
    champion_version: str | None,
) -> str:
    verdict = "PASSED" if decision.passed else "FAILED"
    interval = decision.interval
    lines = [
        f"**Gate {verdict}** — challenger `{challenger_version}` vs champion "
        f"`{champion_version or 'none'}` on the same {challenger.n_rows} holdout rows",
        "",
        *([] if interval is None else [f"Paired bootstrap: {interval.text()}", ""]),
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
        elif line.startswith("Paired bootstrap:"):
            body.append(f"<p><b>{html.escape(line)}</b></p>")
        elif line:
            body.append(f"<h2>{html.escape(line.replace('**', '').replace('`', ''))}</h2>")
    table = "".join(b for b in body if b.startswith("<tr>"))
    other = "".join(b for b in body if not b.startswith("<tr>"))
    return (
        '<section style="font-family: sans-serif; margin: 16px">'
        f'{other}<table border="1" cellpadding="4">{table}</table></section>'
    )


def _scored(holdout: pd.DataFrame, spec: ProblemSpec, scores: np.ndarray) -> Dataset:
    from evidently import BinaryClassification, DataDefinition, Dataset, Regression

    output = spec.scores.score
    labels = spec.task_adapter.labels(holdout[spec.label], spec.label)
    frame = pd.DataFrame({spec.label: labels, output: scores})
    if spec.task_adapter.is_classification:
        definition = DataDefinition(
            classification=[
                BinaryClassification(target=spec.label, prediction_probas=output, pos_label=1)
            ],
            numerical_columns=[output],
        )
    else:
        definition = DataDefinition(
            regression=[Regression(target=spec.label, prediction=output)],
            numerical_columns=[spec.label, output],
        )
    return Dataset.from_pandas(frame, data_definition=definition)


def validation_report_html(
    holdout: pd.DataFrame,
    spec: ProblemSpec,
    challenger_scores: np.ndarray,
    champion_scores: np.ndarray | None,
    comparison: str,
    threshold: float | None = None,
    champion_threshold: float | None = None,
) -> str:
    """Evidently's task report, challenger vs champion, with our table on top.

    ``threshold`` is the challenger's decision threshold (binary tasks): Evidently
    applies one threshold to both columns, so when the champion decides at another one
    the page says so, and its precision and recall at its own threshold are in our table.
    """
    from evidently import Report
    from evidently.presets import ClassificationPreset, RegressionPreset

    classify = spec.task_adapter.is_classification
    if classify != (threshold is not None):
        raise ValueError(f"a {spec.task} report {'needs' if classify else 'takes no'} threshold")
    preset = ClassificationPreset(probas_threshold=threshold) if classify else RegressionPreset()
    snapshot = Report([preset]).run(
        current_data=_scored(holdout, spec, challenger_scores),
        reference_data=None if champion_scores is None else _scored(holdout, spec, champion_scores),
    )
    page = relabelled(snapshot.get_html_str(as_iframe=False))
    note = _threshold_note(threshold, champion_threshold, champion_scores is not None)
    marker = page.find("<body")
    insert_at = page.find(">", marker) + 1 if marker >= 0 else 0
    return page[:insert_at] + _comparison_html(comparison) + note + page[insert_at:]


def _threshold_note(threshold: float | None, champion: float | None, has_champion: bool) -> str:
    if threshold is None:
        return ""
    text = f"Evidently's threshold metrics below are at the challenger's threshold {threshold:.4f}"
    if has_champion and champion is not None and not np.isclose(champion, threshold):
        text += (
            f" for both models; the champion decides at {champion:.4f} in production, and "
            "its precision and recall at that threshold are in the table above"
        )
    return f'<p style="font-family: sans-serif; margin: 16px">{html.escape(text, quote=False)}.</p>'


_EVIDENTLY_NAMES = {
    "current": "challenger",
    "Current": "Challenger",
    "reference": "champion",
    "Reference": "Champion",
}
_EVIDENTLY_WORDS = re.compile(r"\b(current|Current|reference|Reference)\b")


def relabelled(page: str) -> str:
    """Evidently's page with "current"/"reference" in its widget titles and plot labels
    renamed challenger/champion.  Only the report's data script is touched: the same
    words in Evidently's JavaScript are code."""
    start = page.find("var metric_")
    end = page.find("</script>", start)
    if start < 0 or end < 0:
        raise ValueError("Evidently's page has no report data script; cannot relabel it")
    data = _EVIDENTLY_WORDS.sub(lambda m: _EVIDENTLY_NAMES[m.group(1)], page[start:end])
    return page[:start] + data + page[end:]


def model_card(
    *,
    version: str,
    family: str,
    params: dict,
    spec: ProblemSpec,
    metrics: Metrics,
    decision: GateDecision,
    data: dict,
) -> str:
    """A markdown model card: what the model is for, what it saw, how well it does."""
    primary = METRICS[str(spec.primary_metric)].label
    label_mean = "positive rate" if spec.task_adapter.is_classification else "mean label"
    slices = "\n".join(
        f"| {s.column} | {s.value} | {s.n_rows} | {s.label_mean:.3f} | "
        f"{'—' if s.score is None else f'{s.score:.3f}'} |"
        for s in metrics.slices
    )
    calibration = "\n".join(
        f"| {b.mean_predicted:.3f} | {b.observed_mean:.3f} | {b.n_rows} |"
        for b in metrics.calibration
    )
    holdout = (
        f"the {spec.holdout.last_periods} most recent labelled values of `{spec.time_column}`"
        if spec.time_column is not None
        else f"a random {spec.holdout.fraction:.0%} of the labelled rows"
    )
    values = "\n".join(f"| {label} | {_value(metrics, key):.4f} |" for label, key in _rows(metrics))
    return f"""# Model card: `{spec.name}` model `{version}`

## Intended use
{spec.description}

Task: {spec.task}. Label `{spec.label}`: {spec.label_description}
Label horizon: {spec.horizon_text} after `{spec.time_column or "(no time column)"}`.

## Model
- family: `{family}` (scikit-learn pipeline: imputation and encoding travel with it)
- hyperparameters: `{params}`
- features: numeric {list(spec.numeric or ())}; categorical {list(spec.categorical or ())}

## Data
- source: `{spec.relation}`, one row per `{"`, `".join(spec.keys)}`
- training rows: {data.get("train_rows")}, periods {data.get("train_snapshots")}
- holdout rows: {data.get("holdout_rows")}, periods {data.get("holdout_snapshots")}
  ({holdout}, never seen during tuning)
- training data fingerprint: `{data.get("fingerprint")}`
- raw batches behind it: {data.get("batch_count")}

## Holdout metrics
| metric | value |
| --- | ---: |
{values}

Gate: **{"passed" if decision.passed else "failed"}** — {"; ".join(decision.reasons)}

## Slices
| column | value | rows | {label_mean} | {primary} |
| --- | --- | ---: | ---: | ---: |
{slices}

## Calibration (holdout, deciles of the model output)
| mean predicted | mean observed | rows |
| ---: | ---: | ---: |
{calibration}

## Limitations
- The label is what `{spec.label}` records, which may be a proxy for what matters.
- Slices with few rows (or a single class) have unreliable metrics (shown as —).
- No fairness review is part of this card; review the features before using the
  output for decisions about individuals.
"""
