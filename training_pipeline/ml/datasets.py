"""Training sets exported from the warehouse: immutable, named by content, traceable.

Training reads a Parquet export rather than the warehouse, so tuning for minutes never
holds the DuckDB file (which would stop ingestion), and every model version points at
the exact bytes it was fit on.  The export's manifest lists the ingestion batches and
the files and API pages behind them.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from training_pipeline.ingestion.file_formats import sha256_of
from training_pipeline.ml import artifacts
from training_pipeline.ml.problem import ProblemSpec

if TYPE_CHECKING:  # pandas loads when rows are read, not with the definitions
    import pandas as pd


@dataclass(frozen=True)
class TrainingSet:
    path: str
    fingerprint: str  # sha256 of the Parquet bytes
    rows: int
    snapshots: int  # distinct time values; 0 without a time column
    first_snapshot: str  # "" without a time column
    last_snapshot: str
    label_mean: float  # the positive rate for a binary label
    batches: tuple[str, ...]  # ids of the ingestion batches with rows, at export time

    @property
    def manifest_path(self) -> Path:
        return Path(self.path).with_suffix(".json")

    @classmethod
    def from_manifest(cls, path: Path) -> TrainingSet:
        """Read a manifest written by :func:`export_training_set` (or its registry copy)."""
        return cls.from_json(path.read_bytes())

    @classmethod
    def from_json(cls, text: bytes) -> TrainingSet:
        """A manifest's contents, e.g. as read from the registry."""
        data = json.loads(text.decode("utf-8"))
        if "positive_rate" in data:
            # Manifests of binary-only releases: the mean of a 0/1 label is its positive rate.
            data["label_mean"] = data.pop("positive_rate")
        return cls(**(data | {"batches": tuple(data["batches"])}))


def _selected(spec: ProblemSpec) -> str:
    """The spec's columns, or every column while feature roles are still to be inferred."""
    return ", ".join(spec.columns) if spec.roles_known else "*"


def export_training_set(
    con: duckdb.DuckDBPyConnection, spec: ProblemSpec, out_dir: Path
) -> TrainingSet:
    """Write the labelled rows of ``spec.relation`` to ``<out_dir>/<sha256[:16]>.parquet``
    plus a manifest.

    Rows are ordered by (time, id) so the same warehouse content gives the same bytes.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    time = spec.time_column
    temporary = out_dir / f".export-{os.getpid()}-{uuid.uuid4().hex[:8]}.parquet"
    target = str(temporary).replace("'", "''")  # COPY takes no parameters
    try:
        con.execute(
            f"copy (select {_selected(spec)} from {spec.relation} where {spec.label} is not null "
            f"order by {', '.join(spec.keys)}) to '{target}' (format parquet)"
        ).fetchall()
        _fsync(temporary)
        periods = (
            "0, '', ''" if time is None else f"count(distinct {time}), min({time}), max({time})"
        )
        ((rows, snapshots, first, last, label_mean),) = con.execute(
            f"select count(*), {periods}, avg({spec.label}::double) from read_parquet(?)",
            [str(temporary)],
        ).fetchall()
        batches = con.execute(
            # A batch that loaded nothing put nothing in the training set.
            "select batch_id from raw.ingestion_batches where rows_loaded > 0 "
            "order by started_at, batch_id"
        ).fetchall()
        fingerprint = sha256_of(temporary)
        final = out_dir / f"{fingerprint[:16]}.parquet"
        os.replace(temporary, final)
    except duckdb.IOException as error:  # a full disk, an unwritable folder
        first_line = str(error).strip().splitlines()[0]
        raise OSError(
            f"could not export the training set to {out_dir}: {first_line}; nothing was "
            "published there"
        ) from error
    finally:
        temporary.unlink(missing_ok=True)
    artifacts.fsync_directory(out_dir)
    dataset = TrainingSet(
        str(final),
        fingerprint,
        int(rows),
        int(snapshots),
        str(first),
        str(last),
        float(label_mean or 0.0),
        tuple(b for (b,) in batches),
    )
    # After the Parquet file: a manifest never names a file that is not there.
    manifest = json.dumps(asdict(dataset), indent=2) + "\n"
    artifacts.atomic_write_bytes(dataset.manifest_path, manifest.encode())
    return dataset


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_training_set(dataset: TrainingSet) -> pd.DataFrame:
    """The exported rows, after checking the file is still the one fingerprinted."""
    path = Path(dataset.path)
    actual = sha256_of(path)
    if actual != dataset.fingerprint:
        raise ValueError(
            f"training set {path} changed since export: sha256 {actual}, "
            f"expected {dataset.fingerprint}"
        )
    import pandas as pd

    return pd.read_parquet(path)


def latest_snapshot(con: duckdb.DuckDBPyConnection, spec: ProblemSpec) -> pd.DataFrame:
    """The rows scoring scores: the latest time value's (its label is not yet
    observable), or without a time column the rows whose label is null."""
    return current_window(con, spec, periods=1)


def current_window(
    con: duckdb.DuckDBPyConnection, spec: ProblemSpec, periods: int | None = None
) -> pd.DataFrame:
    """The feature rows of the ``periods`` newest time values (``spec.drift.current_periods``
    by default), labelled or not: what drift compares with the training data.  Without a
    time column, the rows whose label is null (the rows scoring scores)."""
    periods = spec.drift.current_periods if periods is None else periods
    if periods < 1:
        raise ValueError(f"periods must be at least 1, got {periods}")
    columns = ", ".join(c for c in spec.columns if c != spec.label)
    table, time = spec.relation, spec.time_column
    if time is None:
        where = f"{spec.label} is null"
    else:
        newest = f"select distinct {time} from {table} order by {time} desc limit {periods}"
        where = f"{time} in ({newest})"
    order = spec.id_column if time is None else f"{time}, {spec.id_column}"
    return con.execute(f"select {columns} from {table} where {where} order by {order}").df()


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """The first 16 hex digits of a sha256 over ``frame``'s columns and values (row order
    counts): equal rows, equal fingerprints; any new or changed row, another."""
    import pandas as pd

    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]
