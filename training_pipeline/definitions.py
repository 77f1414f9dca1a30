"""The whole pipeline, assembled.  Each stage lives one import away.

Dagster loads ``defs`` by calling it: the settings are read once, there, and handed to
the pieces that depend on them, so importing this module reads no setting.  The
project folder's ``defs/`` (TRAINING_PIPELINE_PROJECT_DIR) adds its declarations.
"""

from collections.abc import Sequence

import dagster as dg

from training_pipeline.assets.dbt import cleaned_tables_of
from training_pipeline.automation.alerts import build_run_failure_sensor
from training_pipeline.automation.jobs import build_downstream_automation, retrain_on_latest_data
from training_pipeline.automation.sensors import build_new_data_sensor
from training_pipeline.components import COMPONENT_TYPES
from training_pipeline.components.loader import LoadedProject, load_project
from training_pipeline.components.sources import declared_sources, declared_systems
from training_pipeline.dbt_sources import check_dbt_sources
from training_pipeline.execution import build_executor
from training_pipeline.project import dbt_project_of
from training_pipeline.resources import build_resources
from training_pipeline.settings import Settings
from training_pipeline.source_declarations import check_settings
from training_pipeline.spec.sources import Source


@dg.definitions
def defs() -> dg.Definitions:
    # Every setting and declared source URL at once, so a bad one fails loading, not a run.
    check_settings()
    return build_definitions(Settings.from_env())


def build_definitions(settings: Settings, project: LoadedProject | None = None) -> dg.Definitions:
    """The pipeline's own pieces and the project's declared models and sources.

    Each declared model (the project's defs/) brings its training set, candidate, the
    blocking gate, production, scores, drift checks, retrain job, schedule and sensor.
    ``project``: the project folder already loaded (a run reads its models from it too).
    """
    project = project or load_project(settings, COMPONENT_TYPES)
    # The dbt sources are generated from the declarations; a stale file fails here.
    check_dbt_sources(dbt_project_of(settings).manifest_path, declared_systems(project))
    return dg.Definitions.merge(
        pipeline_definitions(settings, declared_sources(project)), project.defs
    )


def pipeline_definitions(settings: Settings, sources: Sequence[Source]) -> dg.Definitions:
    policy = settings.policy
    return dg.Definitions(
        assets=[
            # 1. Ingestion: the raw layer, one asset per declared source (project.defs).
            # 2. Cleaning and 3. features: the project folder's dbt models (staging views,
            # marts, point-in-time snapshots).
            cleaned_tables_of(settings),
        ],
        jobs=[retrain_on_latest_data],
        sensors=[
            # New data in: one probe per declared source, one run for whatever moved.
            build_new_data_sensor(policy, sources),
            # Everything downstream follows by declarative automation.
            build_downstream_automation(policy),
            # Every failed run, failed gate and automatic rollback: a JSON line and a webhook.
            build_run_failure_sensor(settings),
        ],
        # In the run's process by default (start-up dominates on small machines); Celery
        # workers or a process per step by TRAINING_PIPELINE_EXECUTOR (execution.py).
        executor=build_executor(settings.execution),
        resources=build_resources(settings, {s.name: s.contract.names for s in sources}),
    )
