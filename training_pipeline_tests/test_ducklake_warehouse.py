"""The warehouse on DuckLake (catalog in Postgres, data files in a folder): the raw
layer's bookkeeping works without constraints, several processes write at once, and the
connection stays confined and never downloads an extension."""

from __future__ import annotations

import multiprocessing
import os
import time
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from s3_helpers import KEY_ID, SECRET

from training_pipeline.environment import SettingsError
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.ingestion.lake import DuckLake, S3Access, extension_file, prepare
from training_pipeline.settings import DuckDBLimits, Settings

pytestmark = pytest.mark.integration  # several writer processes, and S3 through a local server

LIMITS = DuckDBLimits(memory_limit="256MB", threads=1)


def lake_in(catalog: str, data_dir: Path) -> DuckLake:
    return DuckLake(catalog, str(data_dir / "lake"))


def test_the_extensions_load_from_their_wheels_with_downloads_off(tmp_path):
    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    prepare(con, DuckLake("unused", str(tmp_path / "lake")))
    loaded = con.execute(
        "select extension_name, install_path from duckdb_extensions() "
        "where loaded and extension_name in ('ducklake', 'postgres_scanner')"
    ).fetchall()
    assert sorted(name for name, _ in loaded) == ["ducklake", "postgres_scanner"]
    assert extension_file("ducklake").is_relative_to(Path(duckdb.__file__).parents[1])


@pytest.mark.postgres
def test_the_bookkeeping_keeps_one_cursor_per_source_on_ducklake(lake_catalog, tmp_path):
    lake = lake_in(lake_catalog, tmp_path)
    with wh.connect(tmp_path / "warehouse.duckdb", limits=LIMITS, lake=lake) as con:
        assert wh.is_lake(con)
        wh.ensure_raw_layer(con)
        with wh.transaction(con):
            wh.write_cursor(con, "crm", "2026-01-01")
        with wh.transaction(con):
            wh.write_cursor(con, "crm", "2026-02-01")
        wh.write_cursor(con, "tickets", "7")
    with wh.connect(tmp_path / "warehouse.duckdb", limits=LIMITS, lake=lake, read_only=True) as con:
        assert wh.read_cursor(con, "crm") == "2026-02-01"
        assert wh.read_cursor(con, "tickets") == "7"
        assert wh.table_row_count(con, "raw", "source_cursors") == 2


@pytest.mark.postgres
def test_a_ducklake_connection_cannot_read_outside_the_data_directory(lake_catalog, tmp_path):
    outside = tmp_path / "outside.csv"
    outside.write_text("a\n1\n")
    data_dir = tmp_path / "data"
    with (
        wh.connect(
            data_dir / "warehouse.duckdb", limits=LIMITS, lake=lake_in(lake_catalog, data_dir)
        ) as con,
        pytest.raises(duckdb.PermissionException),
    ):
        con.execute(f"select * from read_csv('{outside}')").fetchall()


def _write_while_the_other_writes(
    catalog: str, data_dir: str, writer: str, barrier, results
) -> None:
    """Open a write transaction, wait until the other writer has one open too, commit."""
    lake = DuckLake(catalog, str(Path(data_dir) / "lake"))
    with wh.connect(Path(data_dir) / "warehouse.duckdb", limits=LIMITS, lake=lake) as con:
        with wh.transaction(con):
            began = time.time()
            wh.record_batch(
                con,
                batch_id=f"batch-{writer}",
                source=writer,
                started_at=datetime(2026, 1, 1),
                rows_loaded=1,
                refs=[writer],
                run_id=None,
                kind="files",
            )
            barrier.wait(timeout=120)  # both transactions are open here
        results[writer] = (began, time.time())


@pytest.mark.postgres
def test_two_writers_overlapping_in_time_both_commit_to_one_ducklake(lake_catalog, tmp_path):
    lake = lake_in(lake_catalog, tmp_path)
    with wh.connect(tmp_path / "warehouse.duckdb", limits=LIMITS, lake=lake) as con:
        wh.ensure_raw_layer(con)
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier, results = manager.Barrier(2), manager.dict()
        writers = [
            context.Process(
                target=_write_while_the_other_writes,
                args=(lake_catalog, str(tmp_path), name, barrier, results),
            )
            for name in ("ingestion", "dbt")
        ]
        for process in writers:
            process.start()
        for process in writers:
            process.join(timeout=300)
        assert [p.exitcode for p in writers] == [0, 0]
        spans = dict(results)
    (a_start, a_end), (b_start, b_end) = spans["ingestion"], spans["dbt"]
    assert a_start < b_end and b_start < a_end  # the two write transactions overlapped
    with wh.connect(tmp_path / "warehouse.duckdb", limits=LIMITS, lake=lake, read_only=True) as con:
        batches = con.execute("select source from raw.ingestion_batches order by 1").fetchall()
    assert batches == [("dbt",), ("ingestion",)]


def _open_when_all_are_ready(catalog: str, data_dir: str, barrier) -> None:
    lake = DuckLake(catalog, str(Path(data_dir) / "lake"))
    barrier.wait(timeout=120)
    with wh.connect(Path(data_dir) / "warehouse.duckdb", limits=LIMITS, lake=lake) as con:
        wh.ensure_raw_layer(con)


@pytest.mark.postgres
def test_writers_opening_a_new_ducklake_at_once_all_get_its_catalog(lake_catalog, tmp_path):
    # Regression: DuckLake creates its catalog tables on the first attach, unguarded; two
    # Celery workers' first ingestions collided on them (a duplicate pg_type key).
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(3)
        writers = [
            context.Process(
                target=_open_when_all_are_ready, args=(lake_catalog, str(tmp_path), barrier)
            )
            for _ in range(3)
        ]
        for process in writers:
            process.start()
        for process in writers:
            process.join(timeout=300)
    assert [p.exitcode for p in writers] == [0, 0, 0]
    lake = lake_in(lake_catalog, tmp_path)
    with wh.connect(tmp_path / "warehouse.duckdb", limits=LIMITS, lake=lake) as con:
        assert wh.table_row_count(con, "raw", "source_cursors") == 0


def test_a_ducklake_catalog_setting_makes_the_warehouse_a_lake_with_its_writers(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("TRAINING_PIPELINE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TRAINING_PIPELINE_DUCKLAKE_CATALOG", "postgresql://u:pw@db:5432/lake")
    monkeypatch.setenv("TRAINING_PIPELINE_DUCKLAKE_WRITERS", "3")
    settings = Settings.from_env()
    assert settings.lake == DuckLake("postgresql://u:pw@db:5432/lake", str(tmp_path / "lake"), 3)
    assert settings.warehouse_writers == 3
    assert "pw" not in repr(settings)


def test_the_duckdb_file_stays_the_default_with_one_writer(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINING_PIPELINE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("TRAINING_PIPELINE_DUCKLAKE_CATALOG", raising=False)
    settings = Settings.from_env()
    assert settings.lake is None
    assert settings.warehouse_writers == 1


def test_a_lake_on_s3_without_aws_keys_is_refused_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINING_PIPELINE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TRAINING_PIPELINE_DUCKLAKE_CATALOG", "postgresql://u:pw@db:5432/lake")
    monkeypatch.setenv("TRAINING_PIPELINE_DUCKLAKE_DATA_PATH", "s3://bucket/lake")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    with pytest.raises(SettingsError, match="AWS_ACCESS_KEY_ID"):
        Settings.from_env()


def test_a_bad_catalog_url_is_refused_with_its_password_masked(monkeypatch):
    monkeypatch.setenv("TRAINING_PIPELINE_DUCKLAKE_CATALOG", "mysql://u:hunter2@db/lake")
    with pytest.raises(SettingsError, match="postgresql") as refused:
        Settings.from_env()
    assert "hunter2" not in str(refused.value)


@pytest.mark.postgres
def test_a_ducklake_with_its_data_on_s3_keeps_the_rows_in_the_bucket(
    lake_catalog, s3_bucket, tmp_path
):
    bucket, fs = s3_bucket
    s3 = S3Access(KEY_ID, SECRET, endpoint_url=os.environ["TRAINING_PIPELINE_S3_ENDPOINT_URL"])
    lake = DuckLake(lake_catalog, f"s3://{bucket}/lake", s3=s3)
    with wh.connect(tmp_path / "warehouse.duckdb", limits=LIMITS, lake=lake) as con:
        wh.ensure_raw_table(con, "orders", ["order_id"])
        # More rows than DuckLake inlines into its catalog, so a data file is written.
        con.execute(
            "insert into raw.orders select i::varchar, 'test', 'ref', 'b1', now() "
            "from range(1000) t(i)"
        ).fetchall()
    with wh.connect(tmp_path / "warehouse.duckdb", limits=LIMITS, lake=lake, read_only=True) as con:
        assert wh.table_row_count(con, "raw", "orders") == 1000
    assert fs.find(f"{bucket}/lake"), "no data file in the bucket"
    assert not (tmp_path / "lake").exists()
