"""Components a project's ``defs.yaml`` files may declare, and the loader that reads them.

``COMPONENT_TYPES`` maps each ``type:`` a declaration may name to its class; anything
else is refused at load with this list.
"""

from training_pipeline.components.base import ProjectComponent
from training_pipeline.components.sources import Sources
from training_pipeline.components.trained_model import TrainedModel

COMPONENT_TYPES: dict[str, type[ProjectComponent]] = {
    "training_pipeline.components.Sources": Sources,
    "training_pipeline.components.TrainedModel": TrainedModel,
}

__all__ = ["COMPONENT_TYPES", "ProjectComponent", "Sources", "TrainedModel"]
