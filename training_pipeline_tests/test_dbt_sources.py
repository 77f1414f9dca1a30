"""The dbt raw sources are generated from the source declarations, and a dbt project
whose sources drifted from them refuses to load, naming the source and the difference."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from training_pipeline.cli import main
from training_pipeline.components import COMPONENT_TYPES
from training_pipeline.components.loader import load_project
from training_pipeline.components.sources import declared_systems
from training_pipeline.dbt_sources import (
    SOURCES_FILE,
    DbtSourcesDrift,
    DeclaredSystem,
    check_manifest_sources,
    render_sources,
)
from training_pipeline.settings import DEFAULT_PROJECT_DIR, PROJECT_DBT_TARGET, Settings

MANIFEST = DEFAULT_PROJECT_DIR / PROJECT_DBT_TARGET / "manifest.json"


@pytest.fixture(scope="module")
def churn() -> tuple[DeclaredSystem, ...]:
    settings = replace(Settings.from_env(), project_dir=DEFAULT_PROJECT_DIR)
    return declared_systems(load_project(settings, COMPONENT_TYPES))


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads(MANIFEST.read_text())


def changed(system: DeclaredSystem, source: str, **contract_changes) -> DeclaredSystem:
    spec = system.spec.model_dump()
    (entry,) = [s for s in spec["sources"] if s["name"] == source]
    entry["contract"] |= contract_changes
    return replace(system, spec=type(system.spec).model_validate(spec))


def test_the_dbt_sources_file_is_what_the_churn_declarations_generate(churn):
    written = (DEFAULT_PROJECT_DIR / SOURCES_FILE).read_text()
    assert written == render_sources([s.spec for s in churn])
    assert main(["dbt-sources", "--check"]) == 0


def test_one_dbt_source_per_system_with_asset_keys_descriptions_and_provenance(manifest):
    raw = {
        (n["source_name"], n["name"]): n
        for n in manifest["sources"].values()
        if n["schema"] == "raw"
    }
    assert set(raw) == {
        ("shop", "orders"),
        ("crm", "crm_customers"),
        ("support", "tickets"),
        ("weather", "seattle_weather"),
    }
    orders = raw[("shop", "orders")]
    assert orders["meta"]["dagster"]["asset_key"] == ["raw", "orders"]
    assert "an order_id can appear in several batches" in orders["description"]
    assert orders["columns"]["amount"]["description"].startswith("$1,234.50")
    assert {"_source", "_source_ref", "_batch_id", "_ingested_at"} <= set(orders["columns"])


def test_the_parsed_manifest_matches_the_declarations(churn, manifest):
    check_manifest_sources(manifest, churn)


def test_a_column_declared_but_not_generated_fails_naming_source_column_file_and_fix(
    churn, manifest
):
    shop = next(s for s in churn if s.spec.system == "shop")
    columns = shop.spec.sources[0].contract.model_dump()["columns"]
    drifted = changed(shop, "orders", columns=columns | {"coupon": {"description": "code"}})
    others = [s for s in churn if s is not shop]
    with pytest.raises(DbtSourcesDrift) as raised:
        check_manifest_sources(manifest, [drifted, *others])
    message = str(raised.value)
    assert f"shop.orders: column `coupon` declared in {shop.file} is missing" in message
    assert "run `training-pipeline dbt-parse`" in message


def test_a_changed_description_and_an_undeclared_raw_source_are_both_named(churn, manifest):
    crm = next(s for s in churn if s.spec.system == "crm")
    columns = crm.spec.sources[0].contract.model_dump()["columns"]
    columns["age"]["description"] = "Age in years."
    drifted = changed(crm, "crm_customers", columns=columns)
    with pytest.raises(DbtSourcesDrift) as raised:
        check_manifest_sources(manifest, [drifted])  # shop and support not declared
    message = str(raised.value)
    assert f"crm.crm_customers: column `age`'s description differs from {crm.file}" in message
    assert "shop.orders: a dbt source in schema raw that no declaration declares" in message
    assert "support.tickets: a dbt source in schema raw" in message


def test_a_declared_source_missing_from_the_dbt_project_is_named(churn, manifest):
    without = {"sources": {k: v for k, v in manifest["sources"].items() if v["name"] != "tickets"}}
    with pytest.raises(DbtSourcesDrift, match=r"support\.tickets: declared in .*support"):
        check_manifest_sources(without, churn)


def test_the_check_option_fails_when_the_file_is_stale(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("TRAINING_PIPELINE_PROJECT_DIR", str(tmp_path))
    (tmp_path / "defs").mkdir()
    (tmp_path / SOURCES_FILE).parent.mkdir(parents=True)
    (tmp_path / SOURCES_FILE).write_text("version: 2\nsources: []\n")
    assert main(["dbt-sources", "--check"]) == 1
    assert "run `training-pipeline dbt-sources`" in capsys.readouterr().err
    assert main(["dbt-sources"]) == 0
    assert main(["dbt-sources", "--check"]) == 0
