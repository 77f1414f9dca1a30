"""The dbt project, built once; everything else reads its manifest from here."""

from dagster_dbt import DbtProject

from training_pipeline.settings import DBT_PROJECT_DIR

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# Under `dagster dev` the manifest is rebuilt on load; elsewhere `make` builds it.
dbt_project.prepare_if_dev()
