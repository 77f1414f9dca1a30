"""The dbt project of a project folder; everything else reads its manifest from here.

``dbt_project/`` lends its macros, tests and folder configs; the models are the project
folder's own (``<project>/dbt/models``, named in dbt_project.yml's ``model-paths``
through ``TRAINING_PIPELINE_PROJECT_DIR``), so a problem brings its SQL beside its YAML
and the manifest belongs to the project folder: ``training-pipeline dbt-parse`` (which
``make`` runs) parses it to ``<project>/dbt/target``.
"""

from __future__ import annotations

import subprocess
import sys
from functools import cache
from pathlib import Path

from dagster_dbt import DbtProject

from training_pipeline.environment import PROJECT_DIR_ENV, child_environment
from training_pipeline.settings import DBT_PROJECT_DIR, PROJECT_DBT_TARGET, Settings


class ManifestMissing(FileNotFoundError):
    """The project folder's dbt manifest has not been parsed yet."""


@cache
def dbt_project_for(project_dir: Path) -> DbtProject:
    """One ``DbtProject`` per project folder, however often the definitions load."""
    project = DbtProject(
        project_dir=DBT_PROJECT_DIR,
        profiles_dir=DBT_PROJECT_DIR,
        target_path=project_dir / PROJECT_DBT_TARGET,
    )
    # Under `dagster dev` the manifest is rebuilt on load; elsewhere `make` builds it.
    project.prepare_if_dev()
    if not project.manifest_path.is_file():
        raise ManifestMissing(
            f"the project folder {project_dir} has no dbt manifest at {project.manifest_path}; "
            "run `training-pipeline dbt-parse` (or `make`) to parse its dbt models"
        )
    return project


def dbt_project_of(settings: Settings) -> DbtProject:
    return dbt_project_for(settings.project_dir)


def dbt_executable() -> str:
    """dbt from this interpreter's environment, found even when the venv is not active."""
    beside_python = Path(sys.executable).parent / "dbt"
    return str(beside_python) if beside_python.exists() else "dbt"


def parse_project(settings: Settings) -> Path:
    """``dbt parse`` of the project folder's models into its target folder; the manifest.

    dbt's partial parsing keeps the next parse to the files that changed.
    """
    target = settings.dbt_target_dir
    subprocess.run(
        [dbt_executable(), "parse", "--quiet", "--profiles-dir", "."]
        + ["--target-path", str(target)],
        cwd=DBT_PROJECT_DIR,
        env=child_environment({PROJECT_DIR_ENV: str(settings.project_dir)}),
        check=True,
    )
    return target / "manifest.json"
