"""The README's "Bring your own problem", followed as written in a temporary folder.

Each code block of the section is preceded by a marker saying what a user does with it:

- ``<!-- byop:file PATH -->``: write the block to PATH (relative to the working folder);
- ``<!-- byop:edit PATH -->``: set the block's YAML fields in PATH (the file written by a
  command before it), leaving every other field as it was;
- ``<!-- byop:run -->``: run the block's commands in bash (variables it exports carry
  over to the next block, as in one terminal).

The blocks are YAML, SQL and shell only: the problem is brought without a Python file.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml
from dagster._core.storage.asset_check_execution_record import (
    COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES,
)
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecordStatus as Status,
)

from training_pipeline.assets.model_gate import GATE_CHECK
from training_pipeline.ml.registry import ModelRegistry

REPO = Path(__file__).parents[1]
SECTION = "## Bring your own problem"
STEP = re.compile(r"<!-- byop:(file|edit|run)(?: (\S+))? -->\n```(\w+)\n(.*?)```", re.S)
FENCE = re.compile(r"^```\w+$", re.M)
MODEL, FEATURES = "fuel_economy", dg.AssetKey(["features", "cars"])
# A budget for a test beside others on two cores (the section reads these variables).
BUDGET = {"FUEL_ECONOMY_TRIALS": "8", "FUEL_ECONOMY_SECONDS": "15"}


@dataclass(frozen=True)
class Step:
    action: str
    path: str | None
    language: str
    text: str


def readme_section(readme: str) -> str:
    start = readme.index(SECTION + "\n")
    end = readme.find("\n## ", start + len(SECTION))
    return readme[start : end if end != -1 else len(readme)]


def steps_of(section: str) -> list[Step]:
    return [Step(*match.groups()) for match in STEP.finditer(section)]


SECTION_TEXT = readme_section((REPO / "README.md").read_text(encoding="utf-8"))
STEPS = steps_of(SECTION_TEXT)


def test_every_code_block_of_the_section_is_a_marked_step():
    assert len(FENCE.findall(SECTION_TEXT)) == len(STEPS) > 0


def test_the_section_brings_a_problem_in_yaml_sql_and_shell_only():
    assert {s.language for s in STEPS} <= {"yaml", "sql", "sh"}
    written = [s.path for s in STEPS if s.action in ("file", "edit")]
    assert all(path and path.endswith((".yaml", ".yml", ".sql")) for path in written)
    for step in STEPS:
        assert (step.path is None) == (step.action == "run"), step


def set_fields(document: dict, fields: Mapping) -> None:
    """Set ``fields`` in ``document``, nested mappings key by key, as an editor would."""
    for key, value in fields.items():
        if isinstance(value, Mapping) and isinstance(document.get(key), dict):
            set_fields(document[key], value)
        else:
            document[key] = value


def test_an_edit_sets_the_fields_it_names_and_keeps_the_others():
    document = {"attributes": {"name": "m", "tuning": {"trials": 50, "seed": 0}}}
    set_fields(document, {"attributes": {"tuning": {"trials": 8}}})
    assert document == {"attributes": {"name": "m", "tuning": {"trials": 8, "seed": 0}}}


def run_block(text: str, cwd: Path, env: dict[str, str]) -> tuple[dict[str, str], str]:
    """Run ``text`` in bash; the environment it leaves (exports) and what it printed."""
    env_file = cwd / ".byop_env"
    script = f"set -euo pipefail\n{text}\nenv -0 > {env_file}\n"
    done = subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=1200
    )
    assert done.returncode == 0, f"{text}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    pairs = (item.split("=", 1) for item in env_file.read_text().split("\0") if "=" in item)
    env_file.unlink()
    return dict(pairs), done.stdout


def follow(steps: list[Step], cwd: Path, env: dict[str, str]) -> tuple[dict[str, str], str]:
    """Do every step in order; the environment at the end and everything printed."""
    printed = []
    for step in steps:
        if step.action == "run":
            env, out = run_block(step.text, cwd, env)
            printed.append(out)
            continue
        path = cwd / step.path
        if step.action == "file":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(step.text, encoding="utf-8")
        else:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
            set_fields(document, yaml.safe_load(step.text))
            path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return env, "".join(printed)


def user_environment(tmp_path: Path) -> dict[str, str]:
    """A shell with the repository's virtual environment active and a Dagster home."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster_home" / "dagster.yaml").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINING_PIPELINE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # Tuning threads as the suite sets them: tests share the machine.
    threads = os.environ.get("TRAINING_PIPELINE_TUNING_THREADS", "1")
    return env | BUDGET | {"DAGSTER_HOME": str(home), "TRAINING_PIPELINE_TUNING_THREADS": threads}


def scored_rows(warehouse: Path) -> tuple[int, int, int]:
    """Rows scored, rows with a prediction, and the cars without a measured label."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        scored, predicted = con.execute(
            f"select count(*), count(predicted_mpg) from predictions.{MODEL}"
        ).fetchone()
        (unlabelled,) = con.execute(
            "select count(*) from features.cars where miles_per_gallon is null"
        ).fetchone()
    return scored, predicted, unlabelled


@pytest.mark.e2e
def test_following_the_section_verbatim_promotes_a_gated_model_with_scores_and_drift(
    tmp_path: Path,
):
    env, printed = follow(STEPS, tmp_path, user_environment(tmp_path))

    project = Path(env["TRAINING_PIPELINE_PROJECT_DIR"])
    data = Path(env["TRAINING_PIPELINE_DATA_DIR"])
    assert project.is_relative_to(tmp_path) and data.is_relative_to(tmp_path)
    assert not list(project.rglob("*.py"))
    registry = ModelRegistry.for_model(data / "models", MODEL)
    production = registry.production()
    assert production is not None
    assert production.metrics["rmse"] <= 4.5  # the gate's ceiling in the section
    assert [v.version for v in registry.versions()] == [production.version]
    assert f"production model {MODEL}: {production.version}" in printed
    assert "this run: gate passed" in printed
    assert "cars.csv" in printed  # lineage reaches the delivered file
    scored, predicted, unlabelled = scored_rows(data / "warehouse.duckdb")
    assert scored == predicted == unlabelled > 0
    drift = dg.AssetCheckKey(FEATURES, f"{MODEL}_feature_drift")
    gate = dg.AssetCheckKey(dg.AssetKey([MODEL, "validation"]), GATE_CHECK)
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        storage = instance.event_log_storage
        records = storage.get_latest_asset_check_execution_by_key([drift, gate])
    assert records[gate].status == Status.SUCCEEDED
    # The drift check ran on the scored cars: passed, or failed at a declared severity.
    assert records[drift].status in COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES
    assert records[drift].event is not None
