"""The project's declared sources as tests materialize them beside the pipeline's own
assets: their raw assets and the resources they add (``source__<name>``)."""

from __future__ import annotations

import dagster as dg

from training_pipeline.components import COMPONENT_TYPES
from training_pipeline.components.loader import load_project
from training_pipeline.components.sources import declared_sources
from training_pipeline.resources import build_resources
from training_pipeline.settings import Settings


def declared_raw_asset(settings: Settings, name: str) -> dg.AssetsDefinition:
    """``raw/<name>`` as the project folder of ``settings`` declares it."""
    defs = load_project(settings, COMPONENT_TYPES).defs
    return defs.get_assets_def(dg.AssetKey(["raw", name]))


def resources_with_sources(settings: Settings) -> dict[str, object]:
    """The pipeline's resources and every declared source's."""
    project = load_project(settings, COMPONENT_TYPES)
    raw_tables = {s.name: s.contract.names for s in declared_sources(project)}
    return {**build_resources(settings, raw_tables), **(project.defs.resources or {})}


def declared_raw_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    """Every declared source's raw asset (churn's three and the weather file): the dbt
    build reads all of their tables, and a files source with an empty landing folder
    still creates its (empty) table."""
    defs = load_project(settings, COMPONENT_TYPES).defs
    return [
        a
        for a in defs.assets
        if isinstance(a, dg.AssetsDefinition) and all(k.path[0] == "raw" for k in a.keys)
    ]
