"""How dbt nodes appear in Dagster.

Sources need no Python here: each source table declares the ingestion asset it is in
its YAML (``meta.dagster.asset_key``), which the default translator honours, so raw and
cleaned tables form one lineage.  This translator only files models under the cleaning
stage unless their YAML names another group (the features folder does), names the
owner, and gives each dbt data test that has no description of its own a sentence built
from what the test checks, so every asset check in the catalog says what it guards.
Every model waits while any ingestion asset is still in progress (see
``follows_changed_inputs``).
"""

import operator
import re
from collections.abc import Mapping, Sequence
from functools import reduce
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtProject

GROUP = "cleaning"


class TrainingPipelineDbtTranslator(DagsterDbtTranslator):
    def __init__(self, ingestion: Sequence[dg.AssetKey] = ()) -> None:
        super().__init__(DagsterDbtTranslatorSettings(enable_asset_checks=True))
        self.ingestion = tuple(ingestion)

    @classmethod
    def for_manifest(cls, manifest: Mapping[str, Any]) -> "TrainingPipelineDbtTranslator":
        """A translator whose models wait for every ingestion asset the manifest reads
        (its dbt sources, under the asset keys their YAML declares)."""
        sources = manifest.get("sources", {}).values()
        keys = {cls().get_asset_key(props) for props in sources}
        return cls(sorted(keys, key=lambda key: key.to_user_string()))

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
        # Cleaned tables and features follow their inputs once new raw data has landed.
        return follows_changed_inputs(self.ingestion)

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


def follows_changed_inputs(ingestion: Sequence[dg.AssetKey] = ()) -> dg.AutomationCondition:
    """``eager``, counting an input's update only when it changed the input's data version,
    and waiting while any of the ``ingestion`` assets is still to be executed by a run.

    A raw asset whose batch loaded no row keeps its data version
    (``assets/source_common.py``), so zero new rows rebuild nothing downstream.  A dbt
    model has no code version, so each of its builds is a new version and its children
    follow it as under ``eager``.

    ``eager`` waits only for its direct inputs.  An ingestion run takes its sources one
    after another, so a tick between two of them saw one source's table new and the next
    one's still coming: the models of the first were built in one run, the features in
    a second, and the rest of the day's models (and the features again) in a third.
    Waiting until the whole ingestion is in makes a day's data one downstream run.
    """
    condition = dg.AutomationCondition
    changed = condition.any_deps_match(
        (condition.data_version_changed() & ~condition.executed_with_root_target()).with_label(
            "data_version_changed_without_root"
        )
        | condition.will_be_requested()
    ).with_label("any_deps_changed")
    follows = condition.eager().replace("any_deps_updated", changed).with_label("eager on new data")
    if not ingestion:
        return follows
    return follows & ~ingestion_in_progress(ingestion)


def ingestion_in_progress(ingestion: Sequence[dg.AssetKey]) -> dg.AutomationCondition:
    """True while a run (or backfill) has any of ``ingestion`` still to execute."""
    condition = dg.AutomationCondition
    in_progress = [condition.asset_matches(key, condition.in_progress()) for key in ingestion]
    return reduce(operator.or_, in_progress).with_label("ingestion_in_progress")


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
