"""The models a project declares, by name: what the CLI and the run summary work on."""

from __future__ import annotations

from training_pipeline.components import COMPONENT_TYPES
from training_pipeline.components.loader import LoadedProject, load_project
from training_pipeline.components.trained_model import TrainedModel
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.registries import registry_of
from training_pipeline.settings import Settings
from training_pipeline.spec.model_spec import ModelSpec


class ModelChoiceError(ValueError):
    """No model, or several and none chosen, or an unknown name; the message lists them."""


def declared_models(settings: Settings) -> dict[str, ModelSpec]:
    """Every model declared in the project's defs/, by name."""
    return models_of(load_project(settings, COMPONENT_TYPES))


def models_of(project: LoadedProject) -> dict[str, ModelSpec]:
    """Every model a loaded project declares, by name."""
    specs = [c.spec for c in project.components if isinstance(c, TrainedModel)]
    return {spec.name: spec for spec in sorted(specs, key=lambda s: s.name)}


def choose_model(declared: list[str], requested: str | None = None) -> str:
    """``requested`` if declared; without one, the only declared model."""
    listed = ", ".join(declared) or "none"
    if requested is not None:
        if requested not in declared:
            raise ModelChoiceError(f"no model named {requested!r}; declared: {listed}")
        return requested
    if not declared:
        raise ModelChoiceError("the project declares no model (no TrainedModel in its defs/)")
    if len(declared) > 1:
        raise ModelChoiceError(f"several models: {listed}; pass --model")
    return declared[0]


def chosen_model(settings: Settings, requested: str | None = None) -> str:
    """The name of the declared model ``requested``, or of the only one (``choose_model``)."""
    return choose_model(list(declared_models(settings)), requested)


def model_registry(settings: Settings, requested: str | None = None) -> ModelRegistry:
    """The registry of the chosen model (see ``choose_model``)."""
    return registry_of(settings, chosen_model(settings, requested))
