"""A day's ingestion is cleaned in one downstream run: the dbt models' condition waits
while any ingestion asset is still to be executed, not only their direct inputs.

Regression: under the daemon, a tick between two sources of one ingestion run saw the
first source's table new and the next one's still coming, and one landed day became
three downstream runs (each a process and a dbt build)."""

from __future__ import annotations

import dagster as dg
import pytest

from training_pipeline.assets.dbt_translator import (
    TrainingPipelineDbtTranslator,
    follows_changed_inputs,
)

CRM, ORDERS = dg.AssetKey(["raw", "crm"]), dg.AssetKey(["raw", "orders"])
STAGING = dg.AssetKey(["stg_crm"])


class Day:
    """Two raw sources taken one after another by one run, and a model over the first;
    the daemon's tick is taken between the two sources, inside the run."""

    def __init__(self, condition: dg.AutomationCondition) -> None:
        self.instance = dg.DagsterInstance.ephemeral()
        self.cursor = None
        self.during: set[dg.AssetKey] = set()

        @dg.asset(key=CRM)
        def crm() -> None:
            return None

        # The dependency only orders the two steps, as the warehouse pool does for real.
        @dg.asset(key=ORDERS, deps=[CRM])
        def orders() -> None:
            self.during = self.tick()

        @dg.asset(key=STAGING, deps=[CRM], automation_condition=condition)
        def stg_crm() -> None:
            return None

        self.raw, self.assets = [crm, orders], [crm, orders, stg_crm]
        dg.materialize(self.assets, instance=self.instance)
        self.tick()

    def tick(self) -> set[dg.AssetKey]:
        result = dg.evaluate_automation_conditions(
            defs=dg.Definitions(assets=self.assets),
            instance=self.instance,
            asset_selection=dg.AssetSelection.assets(STAGING),
            cursor=self.cursor,
        )
        self.cursor = result.cursor
        return {STAGING} if result.get_num_requested(STAGING) else set()

    def ingest(self) -> set[dg.AssetKey]:
        """Runs the ingestion; what the tick inside it requested."""
        dg.materialize(self.raw, instance=self.instance)
        return self.during


@pytest.mark.integration
def test_a_model_waits_while_another_source_of_the_ingestion_run_is_still_coming():
    day = Day(follows_changed_inputs([CRM, ORDERS]))
    assert day.ingest() == set()
    assert day.tick() == {STAGING}
    assert day.tick() == set()


@pytest.mark.integration
def test_without_the_ingestion_keys_a_model_starts_as_soon_as_its_own_input_is_in():
    # What the daemon did before: the model's own input done was enough.
    assert Day(follows_changed_inputs()).ingest() == {STAGING}


def test_the_translator_waits_for_every_source_the_manifest_reads():
    manifest = {
        "sources": {
            f"source.p.{name}.{name}": {
                "resource_type": "source",
                "source_name": name,
                "name": name,
                "meta": {"dagster": {"asset_key": ["raw", name]}},
            }
            for name in ("orders", "crm")
        }
    }
    assert TrainingPipelineDbtTranslator.for_manifest(manifest).ingestion == (CRM, ORDERS)
