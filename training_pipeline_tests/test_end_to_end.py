"""The data half of the graph materialized in process on a temporary directory from the
demo sources: raw data through dbt's marts and features, with what dbt reports about them,
then a second day's batch with a garbage file beside it, then the demo's drifted day:
the drift check's thresholds on the real pipeline (the normal day is no drift error, the
drifted day is one).

The model half (a production model that loads, predicts and scores, with its report and
card) is pinned on the `make run` of test_cli_run.py, which trains it anyway."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import churn_model
import dagster as dg
import pandas as pd
import pytest
from churn_demo import declared
from churn_demo.api_server import DemoApiServer
from churn_demo.generator import generate
from declared_sources import declared_raw_assets, resources_with_sources

from training_pipeline.assets.dbt import cleaned_tables_of
from training_pipeline.ingestion import warehouse as wh
from training_pipeline.ml.datasets import latest_snapshot, load_training_set
from training_pipeline.ml.drift import feature_drift, reference_snapshots
from training_pipeline.settings import Settings
from training_pipeline_tests.churn_model import CHURN

pytestmark = pytest.mark.e2e
training_set = churn_model.asset("training_set")


@pytest.fixture
def live(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Demo sources in the temporary data directory, the ticket API serving them.

    600 customers: the drift verdicts below need that many rows per snapshot."""
    generate(settings, days=180, customers=600, seed=42)
    with DemoApiServer(settings, host="127.0.0.1", port=0) as server:
        monkeypatch.setenv("TRAINING_PIPELINE_API_URL", server.url)
        yield Settings.from_env()


def data_assets(settings: Settings) -> list:
    return [*declared_raw_assets(settings), cleaned_tables_of(settings)]


def materialize(settings: Settings, assets=None, **kwargs) -> dg.ExecuteInProcessResult:
    assets = data_assets(settings) if assets is None else assets
    resources = resources_with_sources(settings)
    result = dg.materialize(assets, resources=resources, raise_on_error=False, **kwargs)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return result


def failed_checks(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    return {
        f"{c.asset_key.to_user_string()}:{c.check_name}": c.severity.value
        for c in result.get_asset_check_evaluations()
        if not c.passed
    }


def materialized_metadata(result: dg.ExecuteInProcessResult, key: str) -> dict:
    (event,) = [
        e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == key
    ]
    return event.materialization.metadata


def observed_metadata(result: dg.ExecuteInProcessResult, key: str) -> dict:
    (observation,) = [
        e.event_specific_data.asset_observation
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
        and e.event_specific_data.asset_observation.asset_key.to_user_string() == key
    ]
    return observation.metadata


def column_types(result: dg.ExecuteInProcessResult, key: str) -> dict[str, str]:
    schema = materialized_metadata(result, key)["dagster/column_schema"].schema
    return {column.name: column.type for column in schema.columns}


def scalar(settings: Settings, sql: str) -> int:
    with wh.connect(settings.warehouse_path, read_only=True, limits=settings.duckdb) as con:
        return con.execute(sql).fetchall()[0][0]


def source_counts(settings: Settings) -> tuple[int, int]:
    with sqlite3.connect(settings.data_dir / "crm.sqlite") as crm:
        customers = crm.execute("select count(distinct customer_id) from customers").fetchone()[0]
    with sqlite3.connect(settings.demo_dir / "tickets.sqlite") as store:
        tickets = store.execute("select count(*) from tickets").fetchone()[0]
    return customers, tickets


def current_snapshot(settings: Settings) -> pd.DataFrame:
    with wh.connect(settings.warehouse_path, read_only=True, limits=settings.duckdb) as con:
        return latest_snapshot(con, CHURN)


def test_the_graph_goes_from_raw_sources_to_features_then_a_new_batch_then_a_drifted_day(
    live: Settings,
):
    first = materialize(live, [*data_assets(live), training_set])
    training = load_training_set(first.output_for_node(churn_model.step("training_set")))
    reference = reference_snapshots(training, CHURN)
    materialized = {e.asset_key.to_user_string() for e in first.get_asset_materialization_events()}
    assert {
        "raw/orders",
        "raw/crm_customers",
        "raw/tickets",
        "marts/customers",
        "marts/orders",
        "marts/tickets",
    } <= materialized
    dbt_checks = [c for c in first.get_asset_check_evaluations() if c.asset_key.path[0] == "marts"]
    assert len(dbt_checks) >= 10  # dbt data tests arrive as asset checks
    assert not [k for k, sev in failed_checks(first).items() if sev == "ERROR"]

    # dbt reports each model's columns with their warehouse types and lineage.
    orders_types = column_types(first, "marts/orders")
    assert orders_types["ordered_at"] == "TIMESTAMP"
    assert orders_types["amount"].startswith("DECIMAL")
    features_types = column_types(first, "features/customer_snapshots")
    assert features_types["snapshot_date"] == "DATE"
    assert set(features_types) >= set(CHURN.features)
    assert "?" not in features_types.values()
    lineage = materialized_metadata(first, "features/customer_snapshots")["dagster/column_lineage"]
    spend_sources = {
        (dep.asset_key.to_user_string(), dep.column_name)
        for dep in lineage.lineage.deps_by_column["spend_30d"]
    }
    assert ("marts/orders", "amount") in spend_sources

    # Cleaning counts, per parsed column, the delivered values it refused.
    nulled = observed_metadata(first, "staging/stg_shop__orders")["nulled_values"].data
    assert nulled["amount"]["delivered"] == scalar(
        live, "select count(*) from raw.orders where nullif(trim(amount), '') is not null"
    )
    ages = observed_metadata(first, "staging/stg_crm__customer_versions")
    assert ages["nulled/age"].value == scalar(
        live,
        "select count(*) from staging.stg_crm__customer_versions "
        "where age is null and nullif(trim(_delivered.age), '') is not null",
    )

    customers, tickets = source_counts(live)
    assert scalar(live, "select count(*) from marts.customers") == customers
    assert scalar(live, "select count(*) from marts.tickets") == tickets
    distinct_orders = scalar(live, "select count(distinct order_id) from raw.orders")
    assert scalar(live, "select count(*) from marts.orders") == distinct_orders
    assert scalar(live, "select count(*) from marts.customers where age is null") < customers
    files_before = scalar(live, "select count(*) from raw.file_manifest")

    # A new day arrives with one unreadable file beside it.
    generate(live, days=1)
    (declared.orders_landing(live) / "orders_broken.csv").write_bytes(b"\x00\x01garbage" * 50)
    second = materialize(live)
    assert failed_checks(second).get("raw/orders:no_quarantined_files") == "WARN"
    assert "raw/orders:rows_reconcile" not in failed_checks(second)
    assert declared.orders_quarantine(live).rglob("orders_broken.csv.reason.json")
    new_files = scalar(live, "select count(*) from raw.file_manifest") - files_before
    assert new_files == 2  # the new day's file and the quarantined one; old files skipped
    assert (
        scalar(live, "select count(*) from marts.orders")
        == scalar(live, "select count(distinct order_id) from raw.orders")
        > distinct_orders
    )
    normal = feature_drift(reference, current_snapshot(live), CHURN)
    assert normal.severity != "error", normal.to_metadata()

    # The demo's drifted day: cents for dollars, a complaint wave, a CRM segment rewrite.
    generate(live, days=1, drift=True)
    materialize(live)
    drifted = feature_drift(reference, current_snapshot(live), CHURN)
    assert drifted.severity == "error", drifted.to_metadata()
    assert {"spend_30d", "open_tickets", "segment"} <= set(drifted.drifted_columns)
