"""How dbt nodes appear in Dagster.

Sources need no Python here: each source table declares the ingestion asset it is in
its YAML (``meta.dagster.asset_key``), which the default translator honours, so raw and
cleaned tables form one lineage.  This translator only files models under the cleaning
stage unless their YAML names another group (the features folder does), and names the
owner.
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings

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
        return dg.AutomationCondition.eager()
