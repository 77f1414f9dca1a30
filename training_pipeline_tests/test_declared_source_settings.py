"""What a source declaration decides that settings used to: the URL variables it names
(checked like settings), the churn demo's CRM, API and landing folder, and the run's
settle wait and quarantine lines for every declared files source."""

from __future__ import annotations

import ast
import re
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from churn_demo import declared
from churn_demo.api_server import DEMO_API_URL

from training_pipeline.components import COMPONENT_TYPES
from training_pipeline.components.loader import load_project
from training_pipeline.environment import SettingsError
from training_pipeline.runner import settle_waits, wait_for_settling
from training_pipeline.settings import DEFAULT_PROJECT_DIR, REPO_ROOT, LandingLimits, Settings
from training_pipeline.source_declarations import check_settings, declared_variables

FLEET = """
type: training_pipeline.components.Sources
attributes:
  system: fleet
  sources:
    - name: planes
      kind: sql_table
      url_env: TRAINING_PIPELINE_FLEET_DB
      table: planes
      contract: {primary_key: [tail], columns: [tail]}
    - name: delays
      kind: http_api
      base_url_env: DELAYS_URL
      endpoint: /delays
      contract: {primary_key: [id], columns: [id]}
    - name: logs
      kind: files
      limits: {settle_s: 30s}
      contract: {columns: [line]}
    - name: manifests
      kind: files
      contract: {columns: [line]}
"""


@pytest.fixture
def fleet(tmp_path: Path, settings: Settings) -> tuple[Settings, Path]:
    path = tmp_path / "project" / "defs" / "fleet" / "defs.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(textwrap.dedent(FLEET))
    return replace(settings, project_dir=tmp_path / "project"), path


def env_of(project: Settings, **variables: str) -> dict[str, str]:
    return {"TRAINING_PIPELINE_PROJECT_DIR": str(project.project_dir), **variables}


def test_a_declared_url_variable_is_refused_as_its_kind_naming_value_source_and_file(fleet):
    project, path = fleet
    env = env_of(
        project,
        TRAINING_PIPELINE_FLEET_DB="postgres//fleet:hunter2@db/fleet",
        DELAYS_URL="ftp://delays.example.com",
    )
    with pytest.raises(SettingsError) as refused:
        check_settings(env)
    message = str(refused.value)
    assert message.startswith("2 settings are refused")
    assert "TRAINING_PIPELINE_FLEET_DB='postgres//fleet:***@db/fleet' is refused: " in message
    assert "it is not a SQLAlchemy database URL" in message and "hunter2" not in message
    assert f"url_env of source 'planes' in {path}" in message
    assert "DELAYS_URL='ftp://delays.example.com' is refused: its scheme is not http" in message
    assert f"base_url_env of source 'delays' in {path}" in message


def test_a_variable_a_declaration_names_is_not_reported_as_unknown(fleet, caplog):
    project, _ = fleet
    valid = {"TRAINING_PIPELINE_FLEET_DB": "sqlite:////srv/fleet.sqlite"}
    assert check_settings(env_of(project, **valid)) == []
    elsewhere = replace(project, project_dir=DEFAULT_PROJECT_DIR)
    assert check_settings(env_of(elsewhere, **valid)) == [
        "TRAINING_PIPELINE_FLEET_DB is set but the pipeline reads no such setting; "
        "see the README's settings table"
    ]


def test_a_declaration_that_is_not_yaml_is_left_to_the_load_which_names_it(tmp_path):
    defs = tmp_path / "defs" / "broken"
    defs.mkdir(parents=True)
    (defs / "defs.yaml").write_text("type: training_pipeline.components.Sources\n  bad: [\n")
    assert declared_variables(tmp_path / "defs") == {}


def test_loading_the_definitions_refuses_a_bad_declared_url_before_any_run(settings, monkeypatch):
    """In process, as the code server calls ``defs()``; that importing the definitions
    reads no setting is test_settings_validation's subject (in a fresh interpreter)."""
    from training_pipeline.definitions import defs

    monkeypatch.setenv("TRAINING_PIPELINE_API_URL", "garbage")
    with pytest.raises(SettingsError) as refused:
        defs()
    message = str(refused.value)
    assert "TRAINING_PIPELINE_API_URL='garbage' is refused: its scheme is not http" in message
    support = DEFAULT_PROJECT_DIR / "defs" / "churn" / "support" / "defs.yaml"
    assert f"base_url_env of source 'tickets' in {support}" in message


# --- the churn demo reads its sources' declarations ----------------------------------


def test_the_demo_serves_its_api_where_the_tickets_declaration_falls_back(settings):
    assert declared.api_url_default(settings) == DEMO_API_URL
    assert declared.api_url(settings) == DEMO_API_URL


def test_the_demo_follows_the_declared_variables_and_landing_folder(settings, monkeypatch):
    assert declared.crm_url(settings) == f"sqlite:///{settings.data_dir}/crm.sqlite"
    monkeypatch.setenv("TRAINING_PIPELINE_CRM_URL", "postgresql+psycopg://crm@db/crm")
    monkeypatch.setenv("TRAINING_PIPELINE_API_URL", "https://tickets.example.com/")
    assert declared.crm_url(settings) == "postgresql+psycopg://crm@db/crm"
    assert declared.api_url(settings) == "https://tickets.example.com"
    assert declared.orders_landing(settings) == settings.data_dir / "landing" / "orders"
    assert declared.orders_quarantine(settings) == settings.data_dir / "quarantine" / "orders"


def test_the_demo_names_the_project_when_it_lacks_a_churn_source(fleet):
    project, _ = fleet
    with pytest.raises(ValueError) as missing:
        declared.crm_url(project)
    assert str(missing.value) == (
        f"the project {project.project_dir} declares no source named 'crm_customers'; the "
        "churn demo writes the churn example's sources (examples/defs/churn/)"
    )


# --- a run waits for, and reports, every declared files source -------------------------


def test_each_files_source_settles_on_its_own_time_and_is_listed(fleet, capsys, monkeypatch):
    project, path = fleet
    project = replace(project, landing=LandingLimits(settle_s=5.0))
    files = {
        name: resource
        for name, resource in load_project(project, COMPONENT_TYPES).defs.resources.items()
        if name in ("source__logs", "source__manifests")
    }
    files = {name.removeprefix("source__"): resource for name, resource in files.items()}
    for name in files:
        landing = project.data_dir / "landing" / name
        landing.mkdir(parents=True)
        (landing / "new.csv").write_text("line\nx\n")
    changed_at = (project.data_dir / "landing" / "logs" / "new.csv").stat().st_ctime
    waits = settle_waits(files, now=changed_at + 1)
    assert waits["logs"] == pytest.approx(29.0, abs=0.5)  # its declared 30 s
    assert waits["manifests"] == pytest.approx(4.0, abs=0.5)  # the project's 5 s
    slept = []
    monkeypatch.setattr("training_pipeline.runner.time.sleep", slept.append)
    wait_for_settling(files, sys.stdout)
    out = capsys.readouterr().out
    assert "source 'logs' that changed in the last 30 s to settle (limits.settle_s of " in out
    assert f"source 'logs' in {path})" in out
    assert "source 'manifests' that changed in the last 5 s to settle " in out
    assert "(TRAINING_PIPELINE_LANDING_SETTLE_S)" in out
    assert len(slept) == 1 and 25 < slept[0] <= 30


# --- nothing per-source is left in the product ------------------------------------------

EXAMPLE_WORDS = re.compile(r"orders|crm|ticket|churn|weather", re.IGNORECASE)


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of every docstring node: docstrings may name an example."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def test_no_string_in_the_product_names_an_example_source():
    """Regression: the CRM and API URL settings, the `orders` landing folder and the
    version-1 sensor cursor's `crm`/`tickets` entries were per-source literals."""
    package = REPO_ROOT / "training_pipeline"
    offenders = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        docstrings = _docstrings(tree)
        offenders += [
            f"{path.relative_to(package)}:{node.lineno}: {node.value!r}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and EXAMPLE_WORDS.search(node.value)
        ]
    assert offenders == []
