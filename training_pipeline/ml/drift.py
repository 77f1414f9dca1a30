"""Data drift of the features and of the scores, measured with Evidently's DataDriftPreset.

**What is compared.** The reference is what the production model was fit on: the most
recent ``spec.drift.reference_periods`` time values of its training set
(``reference_snapshots``; every row when there is no time column); the current data is
the rows being scored.  Recent periods are the fairest reference because the world moves
on its own; a few periods rather than one keep the reference's sampling noise small.

**Which columns.** Every feature of the spec except ``spec.drift.exclude``: a column
that grows with calendar time by construction (an age, a tenure) drifts against any
fixed reference, which says how old the model is, not that the data changed.

**How.** Numeric columns by ``spec.drift.numeric_method`` (default: Wasserstein distance
normed by the reference's standard deviation), categorical ones by
``categorical_method`` (default: Jensen-Shannon distance), each drifted at
``column_threshold`` or more.  The methods are fixed rather than left to Evidently's
automatic choice, which switches to p-value tests when the reference has at most 1000
rows: those flag differences too small to matter once thousands of rows are compared,
and would make the verdict depend on how many rows the reference has.  Measurements on
the shipped examples are in the examples' README.

**Severity.** ``none`` when the drifted share is at most ``warn_share`` (by default: no
column drifted), ``error`` from ``error_share`` on, ``warn`` in between.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from training_pipeline.ml.problem import DriftSettings, ProblemSpec

# Evidently is imported inside _drift: it takes seconds to import, and every Dagster run
# process loads all the definitions, most of which never measure drift.

Severity = Literal["none", "warn", "error"]


@dataclass(frozen=True)
class ColumnDrift:
    """One column's verdict: drifted when Evidently's test on ``score`` fails."""

    score: float
    threshold: float
    method: str
    drifted: bool


@dataclass(frozen=True)
class DriftResult:
    columns: Mapping[str, ColumnDrift]
    drift_share_error: float
    reference_rows: int
    current_rows: int
    html: str = field(repr=False)  # Evidently's report, self-contained (no CDN)
    drift_share_warn: float = 0.0  # as DriftSettings: any drifted column warns

    @property
    def n_columns(self) -> int:
        return len(self.columns)

    @property
    def drifted_columns(self) -> tuple[str, ...]:
        return tuple(name for name, column in self.columns.items() if column.drifted)

    @property
    def n_drifted(self) -> int:
        return len(self.drifted_columns)

    @property
    def drifted_share(self) -> float:
        return self.n_drifted / self.n_columns if self.n_columns else 0.0

    @property
    def severity(self) -> Severity:
        if self.n_drifted == 0 or self.drifted_share <= self.drift_share_warn:
            return "none"
        return "error" if self.drifted_share >= self.drift_share_error else "warn"

    def to_metadata(self) -> dict[str, Any]:
        """Plain JSON values (no NaN), ready for Dagster metadata or a JSON file."""
        return {
            "severity": self.severity,
            "drifted_share": round(self.drifted_share, 4),
            "n_drifted": self.n_drifted,
            "n_columns": self.n_columns,
            "drift_share_error": self.drift_share_error,
            "drift_share_warn": self.drift_share_warn,
            "drifted_columns": list(self.drifted_columns),
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "columns": {
                name: {
                    "score": _json_float(column.score),
                    "threshold": _json_float(column.threshold),
                    "method": column.method,
                    "drifted": column.drifted,
                }
                for name, column in self.columns.items()
            },
        }


def _json_float(value: float) -> float | None:
    return round(float(value), 6) if math.isfinite(value) else None


def monitored_columns(spec: ProblemSpec) -> tuple[str, ...]:
    """The features whose drift is measured: all but ``spec.drift.exclude``."""
    return tuple(c for c in spec.features if c not in spec.drift.exclude)


def reference_snapshots(
    training: pd.DataFrame, spec: ProblemSpec, snapshots: int | None = None
) -> pd.DataFrame:
    """The training set's most recent time values (``spec.drift.reference_periods``
    unless ``snapshots`` is given): the drift reference; every row without a time column."""
    snapshots = spec.drift.reference_periods if snapshots is None else snapshots
    if snapshots < 1:
        raise ValueError(f"snapshots must be at least 1, got {snapshots}")
    if spec.time_column is None:
        return training.reset_index(drop=True)
    times = pd.to_datetime(training[spec.time_column])
    recent = np.sort(times.unique())[-snapshots:]
    return training[times.isin(recent).to_numpy()].reset_index(drop=True)


def too_few_rows(reference_rows: int, current_rows: int, settings: DriftSettings) -> str | None:
    """Why drift cannot be judged on windows this small (``settings.min_rows``), or None."""
    small = [
        f"{name} {rows}"
        for name, rows in (("reference", reference_rows), ("current", current_rows))
        if rows < settings.min_rows
    ]
    if not small:
        return None
    return (
        f"too few rows to judge drift: {', '.join(small)} (drift.min_rows is "
        f"{settings.min_rows}; a wider drift.current_periods or reference_periods helps)"
    )


def feature_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    spec: ProblemSpec,
    columns: Sequence[str] | None = None,
    drift_share_error: float | None = None,
) -> DriftResult:
    """Drift of each monitored feature between the reference and the current snapshot.

    Args:
        reference: Rows the model was fit on, e.g. ``reference_snapshots(training, spec)``.
        current: The snapshot being scored, e.g. ``latest_snapshot(con, spec)``.
        spec: Says which columns are numeric and which categorical, and how to measure.
        columns: The features to compare; ``monitored_columns(spec)`` by default.
        drift_share_error: Share of drifted columns from which the severity is "error";
            ``spec.drift.error_share`` by default.

    Returns:
        Per-column scores and verdicts, the drifted share, the severity and the report.

    Raises:
        ValueError: A column that is not a feature, missing, or without a single value
            in either frame, or a frame without rows.
    """
    chosen = list(monitored_columns(spec) if columns is None else columns)
    unknown = [c for c in chosen if c not in spec.features]
    if unknown:
        raise ValueError(f"not features of the spec: {unknown}")
    numeric = [c for c in chosen if c in spec.numeric]
    categorical = [c for c in chosen if c in spec.categorical]
    settings = spec.drift
    if drift_share_error is not None:
        settings = replace(settings, error_share=drift_share_error)
    return _drift(
        _prepared(reference, numeric, categorical, "reference"),
        _prepared(current, numeric, categorical, "current"),
        numeric,
        categorical,
        settings,
        "Feature drift",
    )


def prediction_drift(
    reference_scores: Sequence[float] | np.ndarray | pd.Series,
    current_scores: Sequence[float] | np.ndarray | pd.Series,
    spec: ProblemSpec,
) -> DriftResult:
    """Drift of the model's output distribution; one column, so a drift is an "error".

    The column is named ``spec.scores.score`` in the report.

    The cleanest reference is the model's scores on rows it was not fit on (its holdout),
    since a flexible model can be more confident on its own training rows.  On the
    default demo world, scores on ``reference_snapshots`` (half of them holdout) gave the
    same distances within 0.005 for all three model families.
    """
    column = spec.scores.score
    frames = [
        _prepared(pd.DataFrame({column: np.asarray(s, dtype=float)}), [column], [], name)
        for s, name in ((reference_scores, "reference"), (current_scores, "current"))
    ]
    return _drift(*frames, [column], [], spec.drift, "Prediction drift")


def _prepared(
    frame: pd.DataFrame, numeric: list[str], categorical: list[str], name: str
) -> pd.DataFrame:
    """Only the compared columns, numbers as float (decimals from Parquet included)."""
    missing = [c for c in numeric + categorical if c not in frame.columns]
    if missing:
        raise ValueError(f"the {name} data has no column {missing}")
    if frame.empty:
        raise ValueError(f"the {name} data has no rows")
    out = pd.DataFrame(index=frame.index)
    for c in numeric:
        out[c] = pd.to_numeric(frame[c], errors="raise").astype("float64")
    for c in categorical:
        out[c] = frame[c].astype("object").where(frame[c].notna(), None)
    empty = [c for c in out.columns if out[c].isna().all()]
    if empty:
        raise ValueError(f"the {name} data has no values in {empty}")
    return out.reset_index(drop=True)


def _drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    settings: DriftSettings,
    title: str,
) -> DriftResult:
    if not 0 <= settings.warn_share < settings.error_share <= 1:
        raise ValueError(
            "drift shares need 0 <= warn < error <= 1, got "
            f"{settings.warn_share} and {settings.error_share}"
        )
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    preset = DataDriftPreset(
        columns=numeric + categorical,
        drift_share=settings.error_share,
        num_method=settings.numeric_method,
        cat_method=settings.categorical_method,
        threshold=settings.column_threshold,
    )
    snapshot = Report([preset], include_tests=True).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )
    result = DriftResult(
        columns=_column_verdicts(snapshot.dict()),
        drift_share_error=settings.error_share,
        drift_share_warn=settings.warn_share,
        reference_rows=len(reference),
        current_rows=len(current),
        html="",
    )
    page = snapshot.get_html_str(as_iframe=False)
    return replace(result, html=_with_summary(page, title, result))


def _column_verdicts(report: dict[str, Any]) -> dict[str, ColumnDrift]:
    """Per column: the ValueDrift metric's score, method and threshold, and its test."""
    failed = {
        test["metric_config"]["metric_id"]: test["status"] == "FAIL"
        for test in report["tests"]
        if test["metric_config"]["params"]["type"].endswith(":ValueDrift")
    }
    verdicts = {}
    for metric in report["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            verdicts[config["column"]] = ColumnDrift(
                score=float(metric["value"]),
                threshold=float(config["threshold"]),
                method=str(config["method"]),
                drifted=failed[metric["id"]],
            )
    return verdicts


def _with_summary(page: str, title: str, result: DriftResult) -> str:
    """The verdict in one line above Evidently's report."""
    drifted = ", ".join(result.drifted_columns) or "none"
    summary = (
        '<section style="font-family: sans-serif; margin: 16px">'
        f"<h2>{html.escape(title)}: {result.severity.upper()}</h2>"
        f"<p>{result.n_drifted} of {result.n_columns} columns drifted "
        f"(share {result.drifted_share:.2f}; error from {result.drift_share_error:.2f}); "
        f"reference {result.reference_rows} rows, current {result.current_rows} rows.</p>"
        f"<p>Drifted: {html.escape(drifted)}</p></section>"
    )
    marker = page.find("<body")
    insert_at = page.find(">", marker) + 1 if marker >= 0 else 0
    return page[:insert_at] + summary + page[insert_at:]
