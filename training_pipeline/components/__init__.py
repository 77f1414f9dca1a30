"""Components a project's ``defs.yaml`` files may declare, and the loader that reads them.

``COMPONENT_TYPES`` maps each ``type:`` a declaration may name to its class; anything
else is refused at load with this list.  It is empty until the model and source
components land (issues 9 and 10).
"""

from training_pipeline.components.base import ProjectComponent

COMPONENT_TYPES: dict[str, type[ProjectComponent]] = {}
