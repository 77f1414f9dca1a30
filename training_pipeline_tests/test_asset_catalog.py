"""The asset catalog a person browses in the UI: every asset and check explains itself.

Each asset has a description, a group, an owner and a kind; dbt models are described in
their YAML with their grain and show their documented columns; every asset check,
dbt data tests included, says what it guards.
"""

from __future__ import annotations

import json

import dagster as dg
import pytest

from training_pipeline.assets.dbt_translator import describe_dbt_test
from training_pipeline.definitions import defs
from training_pipeline.project import dbt_project_for
from training_pipeline.settings import DEFAULT_PROJECT_DIR
from training_pipeline_tests.churn_model import CHURN

GRAPH = defs().resolve_asset_graph()
ASSET_KEYS = sorted(GRAPH.get_all_asset_keys(), key=lambda key: key.to_user_string())
DBT_UNIQUE_ID = "dagster_dbt/unique_id"
DOCUMENTED_TABLES = ("marts", "features")


def dbt_models() -> dict[dg.AssetKey, str]:
    """Asset key -> dbt unique id of every dbt model in the graph."""
    models = {}
    for key in ASSET_KEYS:
        unique_id = GRAPH.get(key).metadata.get(DBT_UNIQUE_ID, "")
        if unique_id.startswith("model."):
            models[key] = unique_id
    return models


def manifest_columns(unique_id: str) -> list[str]:
    manifest = json.loads(dbt_project_for(DEFAULT_PROJECT_DIR).manifest_path.read_text())
    return list(manifest["nodes"][unique_id]["columns"])


MODEL_PARTS = ("training_set", "candidate", "validation", "production", "scores")


def test_the_catalog_sees_both_example_models_their_sources_and_the_dbt_models():
    assert len(dbt_models()) >= 11
    expected = {
        dg.AssetKey([model, part]) for model in ("churn", "seattle_weather") for part in MODEL_PARTS
    }
    expected |= {
        dg.AssetKey(["raw", "seattle_weather"]),
        dg.AssetKey(["staging", "stg_weather__seattle_days"]),
        dg.AssetKey(["features", "daily_weather"]),
    }
    assert expected <= set(ASSET_KEYS)


@pytest.mark.parametrize("key", ASSET_KEYS, ids=lambda key: key.to_user_string())
def test_every_asset_has_a_description_a_group_an_owner_and_a_kind(key):
    node = GRAPH.get(key)

    assert (node.description or "").strip(), "no description"
    assert node.group_name and node.group_name != "default", "no group"
    assert node.owners, "no owner"
    assert node.kinds, "no kind tag"


@pytest.mark.parametrize("key", sorted(dbt_models(), key=str), ids=lambda key: key.to_user_string())
def test_every_dbt_model_is_described_in_its_yaml_with_its_grain(key):
    first_paragraph = GRAPH.get(key).description.split("\n\n")[0]

    # dagster-dbt falls back to "dbt model <name>" when the YAML has no description.
    assert not first_paragraph.startswith("dbt model ")
    assert "one row per" in first_paragraph.lower(), first_paragraph


@pytest.mark.parametrize(
    "key",
    sorted((k for k in dbt_models() if k.path[0] in DOCUMENTED_TABLES), key=str),
    ids=lambda key: key.to_user_string(),
)
def test_marts_and_features_expose_every_documented_column_as_the_column_schema(key):
    schema = GRAPH.get(key).metadata.get("dagster/column_schema")

    assert isinstance(schema, dg.TableSchema), "no dagster/column_schema metadata"
    names = [column.name for column in schema.columns]
    assert names == manifest_columns(dbt_models()[key])
    undocumented = [c.name for c in schema.columns if not (c.description or "").strip()]
    assert undocumented == []


def test_the_marts_and_the_features_model_are_all_checked_for_a_column_schema():
    documented = {k.to_user_string() for k in dbt_models() if k.path[0] in DOCUMENTED_TABLES}

    expected = {"marts/customers", "marts/orders", "marts/tickets", "features/customer_snapshots"}
    expected |= {"features/daily_weather"}
    assert documented >= expected


def test_the_features_model_shows_exactly_the_feature_spec_columns_in_order():
    schema = GRAPH.get(dg.AssetKey(["features", "customer_snapshots"])).metadata[
        "dagster/column_schema"
    ]

    assert [column.name for column in schema.columns] == list(CHURN.columns)


def test_every_asset_check_has_a_description():
    undescribed = [
        key.to_user_string()
        for key in GRAPH.asset_check_keys
        if not (GRAPH.get_check_spec(key).description or "").strip()
    ]

    assert len(GRAPH.asset_check_keys) > 20  # the dbt data tests are among them
    assert undescribed == []


def generic_test(kind: str, severity: str = "ERROR", **kwargs) -> dict:
    """A dbt manifest node of a generic data test, as `dbt parse` writes it."""
    return {
        "name": f"{kind}_orders",
        "column_name": kwargs.get("column_name"),
        "original_file_path": "models/marts/orders.yml",
        "test_metadata": {"name": kind, "kwargs": kwargs},
        "config": {"severity": severity},
    }


def test_dbt_tests_without_a_description_say_what_they_check():
    assert describe_dbt_test(generic_test("not_null", column_name="order_id")) == (
        "`order_id` is never null."
    )
    assert describe_dbt_test(generic_test("unique", column_name="order_id")) == (
        "`order_id` is unique."
    )
    assert describe_dbt_test(
        generic_test("accepted_values", column_name="status", values=["placed", "shipped"])
    ) == ("`status` is one of placed, shipped.")
    assert describe_dbt_test(
        generic_test("unique_combination_of_columns", combination_of_columns=["a", "b"])
    ) == ("Each (a, b) occurs once.")


def test_a_warn_only_relationship_test_says_it_does_not_block():
    test = generic_test(
        "relationships",
        severity="warn",
        column_name="customer_id",
        to="ref('customers')",
        field="customer_id",
    )

    assert describe_dbt_test(test) == (
        "Every `customer_id` exists as `customer_id` in `customers`. "
        "Warns only: does not block downstream assets."
    )


def test_a_singular_dbt_test_is_described_by_its_file():
    test = {
        "name": "no_future_orders",
        "original_file_path": "tests/no_future_orders.sql",
        "config": {"severity": "ERROR"},
    }

    assert describe_dbt_test(test) == (
        "dbt test `no_future_orders` (tests/no_future_orders.sql) returns no rows."
    )
