"""``TrainedModel``: one model declared in YAML, built into its assets, checks, jobs and
sensors.

The component's fields are the YAML surface and stay plain (templates must fit in any
of them); after Dagster resolves the templates, the whole declaration is validated in
one go as a ``ModelSpec``, so every rule and every message lives in spec/model_spec.py.
Then it is checked against the dbt manifest: the features relation must be a dbt model
and the named columns must be its columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import dagster as dg
import pydantic
from dagster._utils.schedules import is_valid_cron_string
from dagster_dbt import get_asset_key_for_model
from dagster_dbt.asset_utils import get_manifest_and_translator_from_dbt_assets
from pydantic import PrivateAttr

from training_pipeline.assets.dbt import cleaned_tables_of
from training_pipeline.assets.model_data_age import data_age_check
from training_pipeline.assets.model_deployment import deployment_assets
from training_pipeline.assets.model_drift import model_checks
from training_pipeline.assets.model_gate import gate_asset
from training_pipeline.assets.model_names import DeclaredModel
from training_pipeline.assets.model_serving import serving_assets
from training_pipeline.assets.model_training import training_assets
from training_pipeline.automation.model_automation import automation_defs
from training_pipeline.components.base import ProjectComponent, current_settings
from training_pipeline.components.errors import DeclarationError, problems_of
from training_pipeline.settings import Settings
from training_pipeline.spec.errors import FieldError
from training_pipeline.spec.model_spec import ModelSpec

# A section of the declaration (gate:, tuning:, ...): templates inside it are resolved
# here and its keys are checked by ModelSpec, whose messages name the nested field.
Section = Annotated[
    dict[str, Any],
    dg.Resolver(lambda context, value: context.resolve_value(value), model_field_type=dict),
]


def dbt_assets_of_project(settings: Settings) -> list[dg.AssetsDefinition]:
    """The dbt assets the features relations are looked up in (the project folder's)."""
    return [cleaned_tables_of(settings)]


def _models(manifest: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {
        f"{node['schema']}.{node['name']}": node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
    }


def check_against_manifest(spec: ModelSpec, manifest: Mapping[str, Any]) -> None:
    """The features relation is a dbt model and the named columns are among its columns.

    The manifest's column list is what dbt documents (the warehouse may not exist yet at
    load); the export checks the real table again when it runs.
    """
    models = _models(manifest)
    node = models.get(spec.features)
    if node is None:
        in_schema = sorted(r for r in models if r.startswith(f"{spec.features_schema}."))
        raise FieldError(
            "features",
            f"{spec.features!r} is not a dbt model in the manifest",
            ", ".join(in_schema or sorted(models)),
        )
    columns = list(node["columns"])
    named = {
        "id_column": [spec.id_column],
        "time_column": [spec.time_column] if spec.time_column else [],
        "label": [spec.label],
        "columns.numeric": list(spec.columns.numeric or ()),
        "columns.categorical": list(spec.columns.categorical or ()),
        "columns.exclude": list(spec.columns.exclude),
        "drift.exclude": list(spec.drift.exclude),
    }
    for field, wanted in named.items():
        if missing := [c for c in wanted if c not in columns]:
            raise FieldError(
                field,
                f"{', '.join(missing)} not a column of {spec.features} in the dbt manifest",
                ", ".join(columns),
            )


class TrainedModel(ProjectComponent):
    """A model trained, gated, deployed, scored and monitored from one YAML declaration.

    Every field and its default is described in docs/design (§3.2) and checked by
    ``ModelSpec``; ``name`` defaults to the declaration's folder name.
    """

    namespace: ClassVar[str] = "model"

    name: str | None = None
    description: str = ""
    label_description: str = ""
    features: str
    id_column: str
    time_column: str | None = None
    label: str
    task: str = "binary"
    label_horizon: str = "0d"
    columns: Section = {}
    metrics: Section = {}
    families: list[str] | None = None
    search_spaces: Section = {}
    tuning: Section = {}
    holdout: Section = {}
    gate: Section = {}
    retraining: Section = {}
    drift: Section = {}
    scores: Section = {}
    deployment: Section = {}
    freshness: Section = {}
    serve: Section = {}
    pool: str = "training"

    _spec: ModelSpec | None = PrivateAttr(default=None)

    @property
    def spec(self) -> ModelSpec:
        if self._spec is None:
            raise RuntimeError(f"{self!r} was not loaded from a project's defs/ folder")
        return self._spec

    def declared_names(self) -> tuple[str, ...]:
        return (self.spec.name,)

    @classmethod
    def load(cls, attributes, context: dg.ComponentLoadContext) -> TrainedModel:
        component = super().load(attributes, context)
        declared = component.model_dump()
        declared["name"] = declared["name"] or context.path.name
        try:
            spec = ModelSpec.model_validate(declared)
            check_cron(spec)
            check_against_manifest(spec, manifest_of(dbt_assets_of_project(current_settings())))
        except pydantic.ValidationError as error:
            raise DeclarationError(component.location, problems_of(error, ModelSpec)) from error
        except FieldError as error:
            raise DeclarationError(component.location, [error.problem]) from error
        component._spec = spec
        return component

    def build_project_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return model_definitions(self.spec, current_settings())


def check_cron(spec: ModelSpec) -> None:
    if not is_valid_cron_string(spec.retraining.cron):
        raise FieldError("retraining.cron", f"{spec.retraining.cron!r}", "a cron string")


def manifest_of(dbt_assets: list[dg.AssetsDefinition]) -> Mapping[str, Any]:
    manifest, _, _ = get_manifest_and_translator_from_dbt_assets(dbt_assets)
    return manifest


def model_definitions(spec: ModelSpec, settings: Settings) -> dg.Definitions:
    """Everything model ``spec.name`` owns, keys and names derived from the name."""
    features_key = get_asset_key_for_model(dbt_assets_of_project(settings), spec.features_model)
    model = DeclaredModel(spec, features_key)
    assets = [
        *training_assets(model),
        gate_asset(model),
        *deployment_assets(model),
        *serving_assets(model),
    ]
    return dg.Definitions.merge(
        dg.Definitions(assets=assets, asset_checks=[*model_checks(model), data_age_check(model)]),
        automation_defs(model, settings.policy.sensor_interval_s),
    )
