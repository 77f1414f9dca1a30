"""How dbt nodes appear in Dagster.

Sources need no Python here: each source table declares the ingestion asset it is in
its YAML (``meta.dagster.asset_key``), which the default translator honours, so raw and
cleaned tables form one lineage.  This translator only files models under the cleaning
stage unless their YAML names another group (the features folder does), names the
owner, and gives each dbt data test that has no description of its own a sentence built
from what the test checks, so every asset check in the catalog says what it guards.
"""

import re
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtProject

GROUP = "cleaning"


class TrainingPipelineDbtTranslator(DagsterDbtTranslator):
    def __init__(self) -> None:
        super().__init__(DagsterDbtTranslatorSettings(enable_asset_checks=True))

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        declared = super().get_group_name(dbt_resource_props)
        if dbt_resource_props["resource_type"] == "source":
            return declared
        return declared or GROUP

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str]:
        return ["team:analytics-engineering"]

    def get_automation_condition(
        self, dbt_resource_props: Mapping[str, Any]
    ) -> dg.AutomationCondition | None:
        # Cleaned tables and features follow their inputs as soon as new raw data lands.
        return follows_changed_inputs()

    def get_asset_check_spec(
        self,
        asset_spec: dg.AssetSpec,
        manifest: Mapping[str, Any],
        unique_id: str,
        project: DbtProject | None,
    ) -> dg.AssetCheckSpec | None:
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None or spec.description:
            return spec
        test = manifest["nodes"][unique_id]
        return spec._replace(description=test.get("description") or describe_dbt_test(test))


def follows_changed_inputs() -> dg.AutomationCondition:
    """``eager``, counting an input's update only when it changed the input's data version.

    A raw asset whose batch loaded no row keeps its data version
    (``assets/source_common.py``), so zero new rows rebuild nothing downstream.  A dbt
    model has no code version, so each of its builds is a new version and its children
    follow it as under ``eager``.
    """
    condition = dg.AutomationCondition
    changed = condition.any_deps_match(
        (condition.data_version_changed() & ~condition.executed_with_root_target()).with_label(
            "data_version_changed_without_root"
        )
        | condition.will_be_requested()
    ).with_label("any_deps_changed")
    return condition.eager().replace("any_deps_updated", changed).with_label("eager on new data")


def describe_dbt_test(test: Mapping[str, Any]) -> str:
    """What a dbt data test checks, from its manifest node (generic tests by their kind)."""
    metadata = test.get("test_metadata") or {}
    kwargs = metadata.get("kwargs") or {}
    column = f"`{kwargs.get('column_name') or test.get('column_name')}`"
    kind = metadata.get("name")
    if kind == "not_null":
        sentence = f"{column} is never null."
    elif kind == "unique":
        sentence = f"{column} is unique."
    elif kind == "accepted_values":
        sentence = f"{column} is one of {', '.join(map(str, kwargs['values']))}."
    elif kind == "relationships":
        target = re.sub(r"""^ref\(\s*['"]([^'"]+)['"]\s*\)$""", r"\1", kwargs["to"])
        sentence = f"Every {column} exists as `{kwargs['field']}` in `{target}`."
    elif kind == "unique_combination_of_columns":
        sentence = f"Each ({', '.join(kwargs['combination_of_columns'])}) occurs once."
    else:
        sentence = f"dbt test `{test['name']}` ({test.get('original_file_path')}) returns no rows."
    if str(test.get("config", {}).get("severity", "")).lower() == "warn":
        sentence += " Warns only: does not block downstream assets."
    return sentence
