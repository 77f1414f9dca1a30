"""Shared pieces of the order-file tests: the churn shop's declared ``orders`` files
source, a landing folder, a warehouse, a good file to load beside each bad one, and the
checks that the ledger balances."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from training_pipeline.assets.source_files import files_source_asset, files_source_resource
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.ingestion.landing_ingest import ingest_landing_folder
from training_pipeline.ingestion.manifest import LandingReport
from training_pipeline.ingestion.reconciliation import Reconciliation, reconcile_files
from training_pipeline.resources import (
    AlertsResource,
    FilesSourceResource,
    RowContractResource,
    WarehouseResource,
    build_resources,
)
from training_pipeline.settings import (
    DEFAULT_PROJECT_DIR,
    DEFAULT_UI_URL,
    DuckDBLimits,
    RowContractLimits,
    Settings,
)
from training_pipeline.spec.sources import FilesSource, SourceSystem

HEADER = "order_id,customer_id,ordered_at,amount,status\n"
COLUMNS = ("order_id", "customer_id", "ordered_at", "amount", "status")
GOOD = "orders_good.csv"
AT = datetime(2026, 3, 1, 12, 0, 0)
SHOP = DEFAULT_PROJECT_DIR / "defs" / "churn" / "shop" / "defs.yaml"


def declared_system(path: Path) -> SourceSystem:
    """A ``Sources`` declaration's system, validated as the loader validates it."""
    return SourceSystem.model_validate(yaml.safe_load(path.read_text())["attributes"])


SHOP_SYSTEM = declared_system(SHOP)
(ORDERS,) = SHOP_SYSTEM.sources
assert isinstance(ORDERS, FilesSource)


# The declared raw/orders asset, as the project builds it; its folders come from the
# `source__orders` resource (`orders_resources`).
RAW_ORDERS = files_source_asset(SHOP_SYSTEM, ORDERS)


def orders_resources(settings: Settings) -> dict[str, object]:
    """The pipeline's resources with the declared orders source's, as the definitions have."""
    return build_resources(settings) | {"source__orders": files_source_resource(ORDERS, settings)}


def reconcile_orders(con: duckdb.DuckDBPyConnection) -> Reconciliation:
    return reconcile_files(con, ORDERS)


def contract_and_alert_resources(data_dir: Path) -> dict[str, object]:
    """The default row contract, and alerts to the log in ``data_dir`` only."""
    limits = RowContractLimits()
    return {
        "row_contract": RowContractResource(
            future_tolerance_hours=limits.future_tolerance_hours,
            max_rejected_share=limits.max_rejected_share,
        ),
        "alerts": AlertsResource(
            log_path=str(data_dir / "alerts" / "alerts.jsonl"),
            webhook_url=None,
            ui_url=DEFAULT_UI_URL,
        ),
    }


def materialize_orders(
    data_dir: Path, landing: Path, quarantine_dir: Path, settle_s: float = 0.0, **kwargs
) -> dg.ExecuteInProcessResult:
    """Materialize the declared ``raw/orders`` asset with its folders at ``landing`` and
    ``quarantine_dir`` (inside ``data_dir``) and small file limits."""
    resources = {
        "warehouse": WarehouseResource(
            path=str(data_dir / "warehouse.duckdb"), memory_limit="1GB", threads=1
        ),
        "source__orders": FilesSourceResource(
            data_dir=str(data_dir),
            landing_dir=str(landing),
            quarantine_dir=str(quarantine_dir),
            max_file_bytes=1 << 20,
            max_line_bytes=1 << 16,
            settle_s=settle_s,
        ),
    } | contract_and_alert_resources(data_dir)
    return dg.materialize([RAW_ORDERS], resources=resources, **kwargs)


def make_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """The landing folder (created) and the quarantine folder (created when needed)."""
    landing, quarantine_dir = tmp_path / "landing", tmp_path / "quarantine"
    landing.mkdir()
    return landing, quarantine_dir


@contextmanager
def open_warehouse(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with wh.connect(tmp_path / "warehouse.duckdb", limits=DuckDBLimits()) as connection:
        wh.ensure_raw_layer(connection)
        wh.ensure_raw_table(connection, ORDERS.name, ORDERS.contract.names)
        yield connection


def land_good(landing: Path) -> None:
    (landing / GOOD).write_text(HEADER + "G1,C1,x,1,new\nG2,C2,x,2,new\n", encoding="utf-8")


def ingest(con, dirs, batch: str = "b1", **kwargs) -> LandingReport:
    return ingest_landing_folder(con, ORDERS, dirs[0], dirs[1], batch, AT, **kwargs)


def order_ids(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute("select order_id from raw.orders order by 1").fetchall()]


def reason_file(quarantine_dir: Path, name: str, batch: str = "b1") -> dict:
    return json.loads((quarantine_dir / batch / f"{name}.reason.json").read_text())


def assert_quarantined_beside_the_good_file(con, dirs, name: str, problem: str) -> dict:
    """Ingest the bad file with a good one; check both ends of the ledger; return the reason."""
    land_good(dirs[0])
    report = ingest(con, dirs)
    statuses = {o.path: o.status for o in report.outcomes}
    assert statuses == {GOOD: "loaded", name: "quarantined"}
    reason = reason_file(dirs[1], name)
    assert reason["file"] == name
    assert problem in reason["reason"], reason["reason"]
    assert not os.path.lexists(dirs[0] / name) and os.path.lexists(dirs[1] / "b1" / name)
    assert order_ids(con) == ["G1", "G2"]
    ledger = reconcile_orders(con)
    assert ledger.holds and (ledger.files_loaded, ledger.files_quarantined) == (1, 1)
    assert ledger.rows_landed == ledger.rows_loaded + ledger.rows_quarantined
    return reason


def parquet(path: Path, **columns) -> None:
    base = {c: [f"{c}1"] for c in COLUMNS}
    pq.write_table(pa.table({**base, **columns}), path)


# Fixtures for the order-file tests, registered for the suite by conftest.py
# (`pytest_plugins`); a module that needs another `con` defines its own.
@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """The landing folder (created) and the quarantine folder."""
    return make_dirs(tmp_path)


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh warehouse with the raw layer."""
    with open_warehouse(tmp_path) as connection:
        yield connection
