"""Data drift of the features and of the scores, measured with Evidently's DataDriftPreset.

**What is compared.** The reference is what the production model was fit on: the most
recent ``REFERENCE_SNAPSHOTS`` weekly snapshots of its training set
(``reference_snapshots``); the current data is ``latest_snapshot`` after the new batch,
the rows scoring scores.  Recent snapshots are the fairest reference because the world
moves slowly on its own: against the whole training set (21 snapshots on the default
demo world) ``tenure_days`` already drifts on a normal day (0.134), against the last four
it does not (0.053) and no other column comes near its threshold (at most 0.043).  Four
rather than one: as close in time (the last one alone gives the same scores, ±0.01),
but four times the rows (~6,400), so the reference's own sampling noise stays small.

**Which columns.** Every feature of the spec except ``TRENDING`` = ``tenure_days``.
Tenure grows by one day per day for every customer who stays, so its distance to any
fixed reference grows with calendar time alone: on the default world it rises by about
0.0013 a day and crosses the threshold after ~40 normal days without a new training set,
while every other feature stays under 0.075 over 60 normal days.  That drift says how
old the model is, not that the customers changed; retraining cadence answers it, not an
alert.  The remaining thirteen features (all numeric activity, spend and support
features, age, country and segment) are monitored.

**How.** Numeric columns by the Wasserstein distance normed by the reference's standard
deviation, categorical ones by the Jensen-Shannon distance, each drifted at ≥ 0.1
(Evidently's defaults for large data).  They are fixed rather than left to Evidently's
automatic choice, which switches to p-value tests when the reference has at most 1000
rows: those flag differences too small to matter once thousands of rows are compared,
and would make the verdict depend on how many rows the reference has.  Measured on the
default demo world (1500 customers, 270 days): a normal new day drifts 0 of 13 columns,
a ``--drift`` day 9 of 13 (0.69, see ``examples/churn_demo/churn_demo/drift_day.py``).

**Severity.** ``none`` when no column drifted, ``warn`` when some did but fewer than
``drift_share_error`` of them, ``error`` from that share on.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from training_pipeline.ml.feature_spec import FeatureSpec

# Evidently is imported inside _drift: it takes seconds to import, and every Dagster run
# process loads all the definitions, most of which never measure drift.

Severity = Literal["none", "warn", "error"]

REFERENCE_SNAPSHOTS = 4
TRENDING = ("tenure_days",)
NUMERIC_METHOD = "wasserstein"
CATEGORICAL_METHOD = "jensenshannon"
DRIFT_SHARE_ERROR = 0.5
SCORE_COLUMN = "churn_probability"


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
        if self.n_drifted == 0:
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


def monitored_columns(spec: FeatureSpec) -> tuple[str, ...]:
    """The features whose drift is measured: all but the ones that trend by construction."""
    return tuple(c for c in spec.features if c not in TRENDING)


def reference_snapshots(
    training: pd.DataFrame, spec: FeatureSpec, snapshots: int = REFERENCE_SNAPSHOTS
) -> pd.DataFrame:
    """The training set's ``snapshots`` most recent snapshots: the drift reference."""
    if snapshots < 1:
        raise ValueError(f"snapshots must be at least 1, got {snapshots}")
    times = pd.to_datetime(training[spec.time_column])
    recent = np.sort(times.unique())[-snapshots:]
    return training[times.isin(recent).to_numpy()].reset_index(drop=True)


def feature_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    spec: FeatureSpec,
    columns: Sequence[str] | None = None,
    drift_share_error: float = DRIFT_SHARE_ERROR,
) -> DriftResult:
    """Drift of each monitored feature between the reference and the current snapshot.

    Args:
        reference: Rows the model was fit on, e.g. ``reference_snapshots(training, spec)``.
        current: The snapshot being scored, e.g. ``latest_snapshot(con, spec)``.
        spec: Says which columns are numeric and which categorical.
        columns: The features to compare; ``monitored_columns(spec)`` by default.
        drift_share_error: Share of drifted columns from which the severity is "error".

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
    return _drift(
        _prepared(reference, numeric, categorical, "reference"),
        _prepared(current, numeric, categorical, "current"),
        numeric,
        categorical,
        drift_share_error,
        "Feature drift",
    )


def prediction_drift(
    reference_scores: Sequence[float] | np.ndarray | pd.Series,
    current_scores: Sequence[float] | np.ndarray | pd.Series,
    column: str = SCORE_COLUMN,
    drift_share_error: float = DRIFT_SHARE_ERROR,
) -> DriftResult:
    """Drift of the model's score distribution; one column, so a drift is an "error".

    The cleanest reference is the model's scores on rows it was not fit on (its holdout),
    since a flexible model can be more confident on its own training rows.  On the
    default demo world, scores on ``reference_snapshots`` (half of them holdout) gave the
    same distances within 0.005 for all three model families.
    """
    frames = [
        _prepared(pd.DataFrame({column: np.asarray(s, dtype=float)}), [column], [], name)
        for s, name in ((reference_scores, "reference"), (current_scores, "current"))
    ]
    return _drift(*frames, [column], [], drift_share_error, "Prediction drift")


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
    drift_share_error: float,
    title: str,
) -> DriftResult:
    if not 0 < drift_share_error <= 1:
        raise ValueError(f"drift_share_error must be in (0, 1], got {drift_share_error}")
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    preset = DataDriftPreset(
        columns=numeric + categorical,
        drift_share=drift_share_error,
        num_method=NUMERIC_METHOD,
        cat_method=CATEGORICAL_METHOD,
    )
    snapshot = Report([preset], include_tests=True).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )
    result = DriftResult(
        columns=_column_verdicts(snapshot.dict()),
        drift_share_error=drift_share_error,
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
