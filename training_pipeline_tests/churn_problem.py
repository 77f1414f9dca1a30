"""The churn example's ``ProblemSpec``, read from its YAML without Dagster.

Apart from churn_model.py so that a child process (test_disk_faults.py) can import it
without paying for Dagster's import.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from training_pipeline.ml.problem import ProblemSpec
from training_pipeline.spec.model_spec import ModelSpec

# settings.DEFAULT_PROJECT_DIR, without importing settings (it imports Dagster).
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _template_default(match: re.Match[str]) -> str:
    default, or_none = match.groups()
    return "null" if or_none and not default else json.dumps(default)


def declared_problem() -> ProblemSpec:
    """The churn ``ProblemSpec`` from the YAML with every ``env()`` template at its default:
    what the ml tests train, without loading the project's definitions."""
    text = (EXAMPLES / "defs" / "churn" / "model" / "defs.yaml").read_text()
    attributes = yaml.safe_load(text)["attributes"]
    rendered = re.sub(ENV_TEMPLATE, _template_default, json.dumps(attributes))
    return ModelSpec.model_validate(json.loads(rendered)).problem


# "{{ env('NAME', 'default') }}", optionally followed by "or None" (then "" means null).
ENV_TEMPLATE = r"\"\{\{ env\('[A-Z_]+', '([^']*)'\)( or None)? \}\}\""
CHURN = declared_problem()
