"""Live metrics: what production and its shadow scored on served rows whose label arrived.

A served record is about one entity as of one time when the client sent the problem's
id and time columns (``features.FeatureSpec.identity``); the log keeps them as
``entity`` and ``as_of``.  Its label is the one training would use for that row: the
label column of the problem's relation, on the row of that entity at that time, and
only once it is filled in (the features model leaves it null until the label horizon
has passed, and training exports only non-null labels).  The join is point-in-time: a
record maps to the entity's newest row at or before its ``as_of`` (the row whose
features it carried when the client sent that row's time; the row current at the
moment sent otherwise), never to a later one, and a row whose label is still null is
not replaced by an older labelled one.  Without a time column the entity's one row is
the match; when the id is the time column (one row per day) the time alone is.

A served record without its identity, or whose row has no label yet, is counted, not
scored.  Each served record counts once, so an entity requested twice weighs twice,
as it did for the client.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np

from training_pipeline.ml.metrics import METRICS, compute
from training_pipeline.ml.problem import ProblemSpec
from training_pipeline.serving.ingest import PREDICTIONS, create_tables

# Metrics read at a threshold are computed on the decision the server returned (0 or 1,
# at the version's own threshold), so a cut-off of 0.5 on it reproduces that decision.
_ON_DECISIONS = 0.5


@dataclass(frozen=True)
class LiveMetrics:
    role: str  # "production" or "shadow"
    version: str
    served: int  # records served
    identified: int  # of which the client sent the id (and time) to join a label on
    labelled: int  # of which the label has arrived: the rows scored
    values: dict[str, float | None]  # None: undefined on these labels (e.g. one class)


def live_metrics(
    con: duckdb.DuckDBPyConnection,
    model: str,
    problem: ProblemSpec,
    shadowed_by: str | None = None,
) -> list[LiveMetrics]:
    """Per role and version, the problem's measured metrics on the served records whose
    label has arrived, with the counts; production first, then the newest served first.

    ``shadowed_by``: only the requests that shadow version also answered, so its figures
    and production's are on the same records.

    Raises:
        ValueError: ``problem.relation`` does not exist, or a label does not fit the task.
    """
    create_tables(con)
    if not labels_relation_exists(con, problem):
        raise ValueError(f"{problem.relation}: no such table or view to read labels from")
    only = ""
    parameters: list[object] = [model]
    if shadowed_by is not None:
        only = (
            f"and request_id in (select request_id from {PREDICTIONS} where model = ? "
            "and role = 'shadow' and version = ?)"
        )
        parameters += [model, shadowed_by]
    rows = con.execute(_joined(con, problem, only), parameters).fetchall()
    groups: dict[tuple[str, str], list[tuple]] = {}
    newest: dict[tuple[str, str], datetime] = {}
    for role, version, at, *rest in rows:
        groups.setdefault((role, version), []).append(tuple(rest))
        newest[role, version] = max(at, newest.get((role, version), at))
    order = sorted(groups, key=lambda k: (k[0] == "shadow", -newest[k].timestamp(), k[1]))
    return [_measured(role, version, groups[role, version], problem) for role, version in order]


def _joined(con: duckdb.DuckDBPyConnection, problem: ProblemSpec, only: str) -> str:
    """One row per served record: role, version, time, score, decision, whether it
    carries its identity, and its label (null: none yet, or no identity to join on)."""
    time, key = problem.time_column, problem.id_column
    served = (
        "select role, version, score, prediction, entity, try_cast(as_of as timestamp) as as_of, "
        f"predicted_at from {PREDICTIONS} where model = ? {only}"
    )
    if time is None:
        identified, match = "s.entity is not null", "left join truth t on s.entity = t.entity"
        truth = f"select {key}::varchar as entity, {problem.label} as label from {problem.relation}"
    else:
        moment = _as_naive_utc(con, problem.relation, time)
        truth = (
            f"select {key}::varchar as entity, {moment} as as_of, {problem.label} as label "
            f"from {problem.relation}"
        )
        if key == time:
            identified, match = (
                "s.as_of is not null",
                "asof left join truth t on s.as_of >= t.as_of",
            )
        else:
            identified = "s.entity is not null and s.as_of is not null"
            match = "asof left join truth t on s.entity = t.entity and s.as_of >= t.as_of"
    return (
        f"with served as ({served}), truth as ({truth}) "
        f"select s.role, s.version, s.predicted_at, s.score, s.prediction, {identified}, "
        f"t.label from served s {match}"
    )


def _as_naive_utc(con: duckdb.DuckDBPyConnection, relation: str, column: str) -> str:
    """``column`` as a timestamp without zone, in UTC, as the log's ``as_of`` is: a
    TIMESTAMPTZ cast to TIMESTAMP would take the session's time zone instead."""
    schema, table = relation.split(".", 1)
    found = con.execute(
        "select data_type from information_schema.columns where table_catalog = "
        "current_database() and table_schema = ? and table_name = ? and column_name = ?",
        [schema, table, column],
    ).fetchall()
    if not found:
        raise ValueError(f"{relation}: no time column {column!r}")
    if found[0][0] == "TIMESTAMP WITH TIME ZONE":
        return f"timezone('UTC', {column})"
    return f"{column}::timestamp"


def labels_relation_exists(con: duckdb.DuckDBPyConnection, problem: ProblemSpec) -> bool:
    """Whether the problem's features relation (which holds the labels) was built yet."""
    schema, table = problem.relation.split(".", 1)
    (count,) = con.execute(
        "select count(*) from information_schema.tables where table_catalog = "
        "current_database() and table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return count > 0


def _measured(role: str, version: str, rows: Sequence[tuple], problem: ProblemSpec) -> LiveMetrics:
    import pandas as pd

    from training_pipeline.ml.evaluation import measured_metrics

    scored = [(score, decision, label) for score, decision, _, label in rows if label is not None]
    y = problem.task_adapter.labels(pd.Series([label for *_, label in scored]), problem.label)
    scores = np.array([score for score, *_ in scored], dtype=float)
    decisions = np.array([decision for _, decision, _ in scored], dtype=float)
    values: dict[str, float | None] = {}
    for name in measured_metrics(problem):
        chosen = METRICS[name]
        if not chosen.defined_for(y):
            values[name] = None
        elif chosen.needs_threshold:
            values[name] = compute(name, y, decisions, _ON_DECISIONS)
        else:
            values[name] = compute(name, y, scores)
    return LiveMetrics(
        role=role,
        version=version,
        served=len(rows),
        identified=sum(1 for *_, identified, _ in rows if identified),
        labelled=len(scored),
        values=values,
    )
