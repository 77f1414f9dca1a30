"""A full disk or an unwritable data directory: a clear error naming the file, and
nothing half-written (the old file intact, no partial file under the final name, the
production alias where it was).

The tests run as root, so chmod cannot make a folder unwritable.  A full disk is a
file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored) set on this process around the one call
under test, which makes writes past it fail with EFBIG as a full disk fails them with
ENOSPC, or an fsync that reports ENOSPC; an unwritable data directory is a path whose
parent is a regular file.
"""

from __future__ import annotations

import errno
import json
import os
import re
import resource
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from fitted_models import fitted, register
from synthetic_churn import churn_snapshots

from training_pipeline.alerts import Alert, write_alert_log
from training_pipeline.assets.model_drift import check_result
from training_pipeline.ml import artifacts
from training_pipeline.ml.datasets import TrainingSet, export_training_set, load_training_set
from training_pipeline.ml.drift import DriftResult
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline_tests.churn_model import CHURN

TESTS = Path(__file__).parent
REPO = TESTS.parent


@contextmanager
def file_size_limit(limit_bytes: int) -> Iterator[None]:
    """Inside the block, no file this process writes can grow past ``limit_bytes``.

    Only the soft limit moves, so it can be raised back afterwards.  In process rather
    than in a child: a child would pay a fresh interpreter and every import for the same
    system call failing the same way.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def files_under(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    registry = ModelRegistry(tmp_path / "models")
    registry.promote(register(registry, fitted()).version)
    return registry


def test_a_full_disk_while_registering_names_the_file_and_publishes_no_version(registry):
    before = files_under(registry.root)
    model = fitted("random_forest")

    with pytest.raises(OSError) as full, file_size_limit(4096):  # far below a model artifact
        register(ModelRegistry(registry.root), model)

    assert full.value.errno == errno.EFBIG
    assert re.search(r"could not write \S+/model\.skops: File too large", str(full.value))
    assert "nothing was published" in str(full.value)
    assert files_under(registry.root) == before  # no staging directory left either
    assert [p.name for p in (registry.root / "versions").iterdir()] == [
        registry.production().version
    ]


def test_a_full_disk_while_promoting_keeps_the_index_and_the_production_alias(registry):
    production = registry.production().version
    second = register(registry, fitted("random_forest"), family="random_forest").version
    index = registry.root / "registry.json"
    before = files_under(registry.root)
    assert index.stat().st_size > 1024

    with pytest.raises(OSError) as full, file_size_limit(1024):  # the index no longer fits
        ModelRegistry(registry.root).promote(second)

    assert full.value.errno == errno.EFBIG
    assert f"could not write {index}: File too large" in str(full.value)
    assert "registry.json keeps its previous content" in str(full.value)
    assert files_under(registry.root) == before
    assert registry.production().version == production
    registry.load(production)


def test_a_full_disk_while_attaching_reports_keeps_the_old_report_and_its_hash(
    registry, monkeypatch
):
    version = registry.production().version
    registry.attach(version, {"report.html": b"<html>first</html>"})
    directory = registry.production().directory
    before = files_under(directory)
    real_fsync = os.fsync

    def full_when_writing_the_model_card(fd: int) -> None:
        if ".model_card.md." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_when_writing_the_model_card)
    with pytest.raises(OSError, match=r"could not write \S+/model_card\.md: No space left"):
        registry.attach(version, {"report.html": b"<html>second</html>", "model_card.md": b"#"})
    monkeypatch.undo()

    assert files_under(directory) == before
    metadata = json.loads((directory / "metadata.json").read_bytes())
    assert metadata["files"]["report.html"] == artifacts.sha256_bytes(b"<html>first</html>")


def snapshots_warehouse(path: Path, rows: int) -> duckdb.DuckDBPyConnection:
    frame = churn_snapshots(n_customers=rows // 10, n_snapshots=10, seed=3)
    con = duckdb.connect(str(path))
    con.execute("create schema features").fetchall()
    con.register("frame", frame[list(CHURN.columns)])
    con.execute("create table features.customer_snapshots as select * from frame").fetchall()
    con.execute("create schema raw").fetchall()
    con.execute(
        "create table raw.ingestion_batches "
        "(batch_id varchar, started_at timestamp, rows_loaded bigint)"
    )
    con.execute("checkpoint").fetchall()
    return con


def test_a_full_disk_during_the_training_set_export_publishes_nothing(tmp_path):
    out_dir = tmp_path / "datasets"
    with snapshots_warehouse(tmp_path / "warehouse.duckdb", rows=3000) as con:
        earlier = export_training_set(con, CHURN, out_dir)
        con.execute("delete from features.customer_snapshots where customer_id % 10 = 1")
        con.execute("checkpoint").fetchall()
    before = files_under(out_dir)

    with (
        duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con,
        pytest.raises(OSError) as full,
        file_size_limit(2048),
    ):
        export_training_set(con, CHURN, out_dir)

    assert str(full.value).startswith(f"could not export the training set to {out_dir}: ")
    assert "File too large" in str(full.value)
    assert files_under(out_dir) == before  # no new Parquet, manifest or temporary file
    assert len(load_training_set(TrainingSet.from_manifest(earlier.manifest_path))) > 0


def alert(run_id: str) -> Alert:
    return Alert(
        kind="run_failure",
        job_name="retrain_on_latest_data",
        run_id=run_id,
        message="step raw__orders failed " + "x" * 400,
        timestamp=datetime(2026, 1, 2, tzinfo=UTC),
    )


def test_a_full_disk_never_leaves_half_an_alert_line_in_the_log(tmp_path):
    log = tmp_path / "alerts" / "alerts.jsonl"
    write_alert_log(alert("first"), log)
    before = log.read_bytes()

    second = Alert("run_failure", "job", "second", "m" * 400, datetime(2026, 1, 2, tzinfo=UTC))

    # The line starts fitting, then the disk is full.
    with pytest.raises(OSError) as full, file_size_limit(len(before) + 100):
        write_alert_log(second, log)

    assert full.value.errno == errno.EFBIG
    assert f"run second to {log}: File too large; the log was left as it was" in str(full.value)
    assert log.read_bytes() == before
    assert [json.loads(line)["run_id"] for line in log.read_text().splitlines()] == ["first"]


def test_a_full_disk_while_writing_a_drift_report_leaves_no_report(tmp_path, monkeypatch):
    drift = DriftResult(
        columns={}, drift_share_error=0.5, reference_rows=1, current_rows=1, html="<html/>"
    )
    reports = tmp_path / "reports"
    check_result(drift, reports, "feature_drift", {})  # an earlier evaluation's report
    before = files_under(reports)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match=r"could not write \S+/prediction_drift-\S+\.html: No space"):
        check_result(drift, reports, "prediction_drift", {})
    monkeypatch.undo()

    assert files_under(reports) == before


def test_an_unwritable_data_directory_is_named_and_nothing_is_written(tmp_path):
    data = tmp_path / "data"
    data.write_text("a regular file where the data directory should be")
    registry = ModelRegistry(data / "models")

    with pytest.raises(NotADirectoryError, match=re.escape(str(data / "models"))):
        register(registry, fitted())
    with pytest.raises(NotADirectoryError, match=f"alert log {re.escape(str(data))}/alerts"):
        write_alert_log(alert("r1"), data / "alerts" / "alerts.jsonl")
    with (
        duckdb.connect() as con,
        pytest.raises(NotADirectoryError, match=re.escape(str(data / "datasets"))),
    ):
        export_training_set(con, CHURN, data / "datasets")
    assert data.read_text() == "a regular file where the data directory should be"
    with pytest.raises(FileNotFoundError, match="'/proc/no-such-process'"):
        register(ModelRegistry(Path("/proc/no-such-process/models")), fitted())


def test_no_artifact_module_writes_a_file_in_place():
    """Regression: the drift report and the training-set manifest were written in place."""
    in_place = re.compile(r"\.write_(text|bytes)\(|open\([^)]*['\"]w")
    # artifacts.py is the atomic writer itself.
    modules = [
        p for p in (REPO / "training_pipeline" / "ml").glob("*.py") if p.name != "artifacts.py"
    ]
    modules += [*(REPO / "training_pipeline" / "assets").glob("*.py")]
    offenders = [
        f"{path.name}:{number}"
        for path in modules
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if in_place.search(line)
    ]
    assert offenders == []
