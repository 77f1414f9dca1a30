"""Zero new rows, zero downstream work: a raw batch that loads nothing keeps the raw
asset's data version, so the automation that rebuilds cleaning and features (the dbt
models' condition) requests nothing; a batch that brings rows moves the version and the
models follow it.  The new-data sensor's first look at a data directory the warehouse
already took in requests only what arrived since."""

from __future__ import annotations

from dataclasses import replace

import dagster as dg
import pytest
from project_folders import project_folder
from test_files_sources import declare_weather, landing, metadata

from training_pipeline.assets.dbt_translator import follows_changed_inputs
from training_pipeline.automation.policy import RetrainingPolicy
from training_pipeline.automation.sensors import IngestionPlan, build_new_data_sensor
from training_pipeline.components.sources import declared_sources
from training_pipeline.ingestion.file_formats import sha256_of
from training_pipeline.resources import build_resources

pytestmark = pytest.mark.integration  # materializes the ingestion assets in process


@pytest.fixture
def project(tmp_path, settings):
    """A project folder of its own: the weather source is declared into it."""
    return replace(settings, project_dir=project_folder(tmp_path / "project"))


RAW = dg.AssetKey(["raw", "weather"])
STAGING = dg.AssetKey(["stg_weather"])


def _with_staging(raw_assets, condition: dg.AutomationCondition) -> list[dg.AssetsDefinition]:
    """The raw asset and a stand-in for the dbt staging model that reads it."""

    @dg.asset(key=STAGING, deps=[RAW], automation_condition=condition)
    def stg_weather() -> None:
        return None

    return [*raw_assets, stg_weather]


class World:
    """The weather source and its staging model on one instance, ticked like the daemon."""

    def __init__(self, settings, condition: dg.AutomationCondition) -> None:
        self.loaded = declare_weather(settings)
        self.assets = _with_staging(self.loaded.defs.assets or [], condition)
        shared = build_resources(settings)
        self.resources = {k: shared[k] for k in ("warehouse", "row_contract", "alerts")} | dict(
            self.loaded.defs.resources or {}
        )
        self.instance = dg.DagsterInstance.ephemeral()
        self.cursor = None

    def ingest(self) -> dg.ExecuteInProcessResult:
        raw = [a for a in self.assets if RAW in a.keys]
        return dg.materialize(raw, resources=self.resources, instance=self.instance)

    def build_everything(self) -> None:
        self.ingest()
        dg.materialize([a for a in self.assets if STAGING in a.keys], instance=self.instance)

    def tick(self) -> set[dg.AssetKey]:
        result = dg.evaluate_automation_conditions(
            defs=dg.Definitions(assets=self.assets, resources=self.resources),
            instance=self.instance,
            asset_selection=dg.AssetSelection.assets(STAGING),
            cursor=self.cursor,
        )
        self.cursor = result.cursor
        return {key for key in (RAW, STAGING) if result.get_num_requested(key)}

    def sensor_tick(self, cursor: str | None = None) -> dg.SensorResult:
        sensor = build_new_data_sensor(RetrainingPolicy(), declared_sources(self.loaded))
        with dg.build_sensor_context(
            resources=self.resources, cursor=cursor, instance=self.instance
        ) as context:
            return sensor(context)

    def data_version(self) -> str | None:
        record = self.instance.get_latest_materialization_event(RAW)
        return record.asset_materialization.tags.get("dagster/data_version")


def _land(settings, name: str, text: str) -> None:
    (landing(settings, "weather") / name).write_text(text)


def test_a_batch_that_loads_no_row_keeps_the_raw_data_version(project):
    world = World(project, follows_changed_inputs())
    _land(project, "day1.csv", "day,temp_c\n2026-01-01,3\n")
    first = world.ingest()
    version = world.data_version()
    again = world.ingest()
    assert metadata(first)["rows_loaded_this_run"] == 1
    assert metadata(again)["rows_loaded_this_run"] == 0
    assert version == metadata(first)["batch_id"] and world.data_version() == version


def test_a_rerun_with_zero_new_rows_requests_nothing_downstream(project):
    world = World(project, follows_changed_inputs())
    _land(project, "day1.csv", "day,temp_c\n2026-01-01,3\n")
    world.build_everything()
    assert world.tick() == set()  # the first tick only sets the cursor
    world.ingest()  # nothing new landed: the batch loads no row
    assert world.tick() == set()
    _land(project, "day2.csv", "day,temp_c\n2026-01-02,4\n")
    world.ingest()
    assert world.tick() == {STAGING}


def test_plain_eager_would_rebuild_downstream_for_zero_new_rows(project):
    """Regression: the first `make ui` after `make run` rebuilt cleaning, features and
    scores for a batch of identical files."""
    world = World(project, dg.AutomationCondition.eager())
    _land(project, "day1.csv", "day,temp_c\n2026-01-01,3\n")
    world.build_everything()
    world.tick()
    world.ingest()
    assert world.tick() == {STAGING}


def test_the_sensors_first_look_at_an_ingested_folder_requests_nothing(project):
    """Regression: the first `make ui` after `make run` requested all 270 order files."""
    world = World(project, follows_changed_inputs())
    _land(project, "day1.csv", "day,temp_c\n2026-01-01,3\n")
    _land(project, "day2.csv", "day,temp_c\n2026-01-02,4\n")
    world.ingest()
    first = world.sensor_tick()
    assert first.run_requests == [] and "nothing new" in first.skip_reason.skip_message
    _land(project, "day3.csv", "day,temp_c\n2026-01-03,5\n")
    (request,) = world.sensor_tick(first.cursor).run_requests
    assert request.asset_selection == [RAW]


def test_the_sensors_first_look_requests_what_landed_after_the_last_ingestion(project):
    world = World(project, follows_changed_inputs())
    _land(project, "day1.csv", "day,temp_c\n2026-01-01,3\n")
    world.ingest()
    _land(project, "day2.csv", "day,temp_c\n2026-01-02,4\n")
    (request,) = world.sensor_tick().run_requests
    sha = sha256_of(landing(project, "weather") / "day2.csv")
    only_day2 = IngestionPlan((RAW,), (f"weather:day2.csv@{sha}",))
    assert (request.asset_selection, request.run_key) == ([RAW], only_day2.run_key)
