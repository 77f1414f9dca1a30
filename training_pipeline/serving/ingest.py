"""The prediction log's files into the warehouse, exactly once, and live scores back out.

Each file (written whole by ``prediction_log``) is loaded in one transaction together
with its name in a ledger; only after the commit is the file deleted.  A crash between
the commit and the deletion leaves a file the ledger already lists: the next run
deletes it without loading it again, so no prediction is counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from training_pipeline.serving.prediction_log import SUFFIX

if TYPE_CHECKING:  # pandas loads with the first query, not with the definitions
    import pandas as pd

SCHEMA = "serving"
PREDICTIONS = f"{SCHEMA}.predictions"
LEDGER = f"{SCHEMA}.prediction_log_files"
# The log line's fields and their warehouse types (prediction_log.entry).
COLUMNS = {
    "request_id": "VARCHAR",
    "record": "INTEGER",
    "model": "VARCHAR",
    "version": "VARCHAR",
    "role": "VARCHAR",
    "at": "TIMESTAMPTZ",
    "features": "JSON",
    "score": "DOUBLE",
    "prediction": "DOUBLE",
    # Files written before the log carried the row's identity load these as null.
    "entity": "VARCHAR",
    "as_of": "VARCHAR",
}


@dataclass(frozen=True)
class Ingested:
    files: int
    rows: int
    already_loaded: int  # files the ledger listed: deleted, not loaded again


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create schema if not exists {SCHEMA}")
    con.execute(
        f"create table if not exists {PREDICTIONS} (model varchar, version varchar, "
        "role varchar, request_id varchar, record integer, predicted_at timestamptz, score double, "
        "prediction double, features json, log_file varchar, entity varchar, as_of varchar)"
    )
    # A table created before the log carried the row's identity gains its columns.
    for column in ("entity", "as_of"):
        con.execute(f"alter table {PREDICTIONS} add column if not exists {column} varchar")
    con.execute(
        f"create table if not exists {LEDGER} (model varchar, log_file varchar, rows bigint, "
        "ingested_at timestamptz, primary key (model, log_file))"
    )


def ingest(con: duckdb.DuckDBPyConnection, directory: Path, model: str) -> Ingested:
    """Load ``<directory>/<model>/*.jsonl`` into ``serving.predictions`` and delete them."""
    create_tables(con)
    folder = directory / model
    files = sorted(folder.glob(f"*{SUFFIX}")) if folder.exists() else []
    listed = {
        name
        for (name,) in con.execute(
            f"select log_file from {LEDGER} where model = ?", [model]
        ).fetchall()
    }
    done = [f for f in files if f.name in listed]
    new = [f for f in files if f.name not in listed]
    rows = 0
    if new:
        columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in COLUMNS.items()) + "}"
        con.execute("begin transaction")
        try:
            con.execute(
                f"insert into {PREDICTIONS} by name select model, version, role, request_id, "
                'record, "at" as predicted_at, score, prediction, features, entity, as_of, '
                "parse_filename(filename) as log_file from read_json(?, "
                f"format = 'newline_delimited', columns = {columns}, filename = true)",
                [[str(f) for f in new]],
            )
            counts = con.execute(
                f"select log_file, count(*) from {PREDICTIONS} where model = ? and log_file in "
                f"(select unnest(?)) group by log_file",
                [model, [f.name for f in new]],
            ).fetchall()
            con.executemany(
                f"insert into {LEDGER} values (?, ?, ?, now())",
                [[model, name, count] for name, count in counts],
            )
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        rows = sum(count for _, count in counts)
    for path in [*done, *new]:
        path.unlink()
    return Ingested(files=len(new), rows=rows, already_loaded=len(done))


def live_scores(
    con: duckdb.DuckDBPyConnection, model: str, version: str, since: datetime
) -> pd.Series:
    """The scores production ``version`` returned to clients since ``since`` (shadow
    predictions excluded); empty when nothing was ingested yet."""
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? "
        "and table_name = 'predictions'",
        [SCHEMA],
    ).fetchone()[0]
    if not exists:
        import pandas as pd

        return pd.Series([], dtype=float, name="score")
    return con.execute(
        f"select score from {PREDICTIONS} where model = ? and version = ? "
        "and role = 'production' and predicted_at >= ?",
        [model, version, since],
    ).df()["score"]


def shadow_agreement(con: duckdb.DuckDBPyConnection, model: str) -> list[dict]:
    """Per shadowed version: how many records it saw beside production, the share where
    both decided the same (binary) and the mean absolute difference of their scores,
    and when its shadowing began and last ran.  Newest shadow first."""
    create_tables(con)
    rows = con.execute(
        "select s.version, any_value(p.version), count(*), "
        "avg((s.prediction = p.prediction)::int), avg(abs(s.score - p.score)), "
        "min(s.predicted_at), max(s.predicted_at) "
        f"from {PREDICTIONS} s join {PREDICTIONS} p on s.model = p.model "
        "and s.request_id = p.request_id and s.record = p.record and p.role = 'production' "
        "where s.model = ? and s.role = 'shadow' group by s.version order by 6 desc",
        [model],
    ).fetchall()
    names = ("shadow", "production", "records", "agreement", "mean_abs_score_difference")
    return [
        dict(zip(names, row[:5], strict=True)) | {"first_at": row[5], "last_at": row[6]}
        for row in rows
    ]
