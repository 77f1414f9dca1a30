"""Every TRAINING_PIPELINE_* setting is declared once and checked before any run starts."""

from __future__ import annotations

import ast
import logging
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from training_pipeline import cli, runner
from training_pipeline.alerts import Alert, AlertDestination, deliver
from training_pipeline.automation.policy import RetrainingPolicy
from training_pipeline.environment import (
    DEFAULT_UI_URL,
    VARIABLES,
    SettingsError,
    check_environment,
    read,
)
from training_pipeline.settings import (
    DEFAULT_PROJECT_DIR,
    DuckDBLimits,
    LandingLimits,
    RowContractLimits,
    Settings,
)
from training_pipeline.source_declarations import check_settings, project_variables

PACKAGE = Path(__file__).parents[1] / "training_pipeline"
CHURN_DEFS = DEFAULT_PROJECT_DIR / "defs" / "churn"
# The churn example's declared URL variables, checked beside the settings.
DECLARED = project_variables({})


@pytest.mark.parametrize("variable", VARIABLES.values(), ids=lambda v: v.name)
def test_every_declared_setting_refuses_a_bad_value_naming_variable_value_and_what_is_allowed(
    variable,
):
    env = {variable.name: variable.bad_example}
    with pytest.raises(SettingsError) as refused:
        check_environment(env)
    message = str(refused.value)
    shown = variable.mask(variable.bad_example) if variable.mask else variable.bad_example
    assert f"{variable.name}={shown!r} is refused" in message
    assert variable.allowed in message
    with pytest.raises(SettingsError, match=re.escape(variable.name)):
        read(variable.name, env)


@pytest.mark.parametrize("variable", VARIABLES.values(), ids=lambda v: v.name)
def test_every_declared_default_parses(variable):
    read(variable.name, {})


def test_the_declared_defaults_are_the_defaults_of_the_settings_objects(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert LandingLimits.from_env({}) == LandingLimits()
    assert DuckDBLimits.from_env({}) == DuckDBLimits()
    assert RetrainingPolicy.from_env({}) == RetrainingPolicy()
    assert RowContractLimits.from_env({}) == RowContractLimits()


def test_no_module_but_environment_reads_the_process_environment():
    """The class of bug: a module reading its own variable, with its own parsing (or none)."""
    readers = re.compile(r"environ\.get\(|environ\[|getenv\(")
    others = re.compile(r"(environ\.get\(|environ\[|getenv\()\"(?!TRAINING_PIPELINE_)[A-Z_]+\"")
    # Setting a variable for child processes (dbt, a benchmark's run) is not reading one.
    writes = re.compile(r"^\s*os\.environ\[[^\]]+\]\s*=[^=]")
    offenders = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "environment.py"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if readers.search(line) and not others.search(line) and not writes.search(line)
    ]
    assert offenders == []


# Where settings may be decided: where they are declared and parsed, and where a process
# starts (definitions load; a CLI or benchmark command).  Everything else receives them.
DECIDES_SETTINGS = {
    "environment.py",
    "settings.py",
    "definitions.py",
    "cli.py",
    "source_declarations.py",  # check_settings(), which definitions.py and cli.py call
    "cli_scaffold.py",  # `training-pipeline new-model`
    "cli_lifecycle.py",  # `training-pipeline rollback/pin/unpin`
    "cli_dbt.py",  # `training-pipeline dbt-sources/dbt-parse`
    "cli_reproduce.py",  # `training-pipeline reproduce`
    "cli_serve.py",  # `training-pipeline serve`
    "benchmark/our_path.py",  # `python -m churn_demo.benchmark.our_path`
    "benchmark/overhead_run.py",  # `make bench`'s overhead command
}


def settings_reads(tree: ast.AST) -> list[int]:
    """Lines calling ``read(...)`` or ``<anything>.from_env(...)`` outside a ``from_env``
    (a ``from_env`` declares how its object is read; calling it is what decides)."""
    lines = []

    def visit(node: ast.AST, inside_from_env: bool) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            inside_from_env = inside_from_env or node.name == "from_env"
        if isinstance(node, ast.Call) and not inside_from_env:
            func = node.func
            reads = isinstance(func, ast.Name) and func.id == "read"
            reads |= isinstance(func, ast.Attribute) and (
                func.attr == "from_env"
                or (func.attr == "read" and getattr(func.value, "id", None) == "environment")
            )
            if reads:
                lines.append(node.lineno)
        for child in ast.iter_child_nodes(node):
            visit(child, inside_from_env)

    visit(tree, False)
    return lines


def test_settings_are_decided_where_a_process_starts_and_nowhere_during_a_run():
    """The class of bug: a step, sensor or helper reading a setting while a run executes
    (``Settings.from_env()``, ``RowContractLimits.from_env()``, ``read(...)``, or a
    ``limits or X.from_env()`` fallback), so that a run could see other settings than
    the ones the definitions were loaded with."""
    offenders = [
        f"{path.relative_to(PACKAGE).as_posix()}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).as_posix() not in DECIDES_SETTINGS
        for line in settings_reads(ast.parse(path.read_text(), str(path)))
    ]
    assert offenders == []


def test_a_variable_changed_after_loading_reaches_no_setting(settings, monkeypatch):
    # Regression: the Optuna storage, the webhook and UI URLs, the row contract and the
    # DuckDB limits were read again while a run executed, not taken from the settings.
    monkeypatch.setenv("TRAINING_PIPELINE_OPTUNA_STORAGE", "sqlite:////elsewhere/optuna.db")
    monkeypatch.setenv("TRAINING_PIPELINE_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("TRAINING_PIPELINE_UI_URL", "http://elsewhere:3000")
    monkeypatch.setenv("TRAINING_PIPELINE_MAX_REJECTED_SHARE", "0.5")
    assert settings.optuna_storage_url == f"sqlite:///{settings.data_dir / 'optuna.db'}"
    destination = AlertDestination.of(settings)
    assert (destination.webhook_url, destination.ui_url) == (None, DEFAULT_UI_URL)
    alert = Alert("run_failure", "job", "run-1", "failed", datetime(2026, 3, 1, tzinfo=UTC))
    assert deliver(alert, destination).status == "not_configured"
    assert settings.row_contract == RowContractLimits()
    reloaded = Settings.from_env()  # the next load (or command) does take them
    assert reloaded.optuna_storage_url == "sqlite:////elsewhere/optuna.db"
    assert (reloaded.webhook_url, reloaded.ui_url) == (
        "http://127.0.0.1:9/hook",
        "http://elsewhere:3000",
    )
    assert reloaded.row_contract.max_rejected_share == 0.5


def test_the_settings_read_check_finds_each_way_of_reading_a_setting():
    source = """
def at_run_time(limits=None):
    limits = limits or RowContractLimits.from_env()
    settings = Settings.from_env()
    ui_url = read("TRAINING_PIPELINE_UI_URL")
    return environment.read("TRAINING_PIPELINE_API_URL")

class Limits:
    @classmethod
    def from_env(cls, env=None):
        return cls(read("TRAINING_PIPELINE_THREADS", env))
"""
    assert settings_reads(ast.parse(source)) == [3, 4, 5, 6]
    assert settings_reads(ast.parse("handle.read(); ledger.read()")) == []


def test_a_secret_in_a_refused_url_is_masked_even_when_the_url_does_not_parse():
    with pytest.raises(SettingsError) as refused:
        check_settings({"TRAINING_PIPELINE_CRM_URL": "postgres//crm:hunter2@db/crm"})
    assert "hunter2" not in str(refused.value)
    assert "postgres//crm:***@db/crm" in str(refused.value)
    # The variable is the churn CRM declaration's: the message names the source and file.
    assert f"url_env of source 'crm_customers' in {CHURN_DEFS / 'crm' / 'defs.yaml'}" in str(
        refused.value
    )


def test_every_refused_setting_is_listed_in_one_message():
    env = {"TRAINING_PIPELINE_TUNING_TRIALS": "abc", "TRAINING_PIPELINE_GATE_AUC_FLOOR": "abc"}
    with pytest.raises(SettingsError) as refused:
        check_environment(env)
    message = str(refused.value)
    assert message.startswith("2 settings are refused")
    assert "TRAINING_PIPELINE_TUNING_TRIALS='abc'" in message
    assert "TRAINING_PIPELINE_GATE_AUC_FLOOR='abc'" in message


def test_a_misspelt_setting_warns_naming_the_closest_known_one(caplog):
    with caplog.at_level(logging.WARNING):
        warnings = check_environment({"TRAINING_PIPELINE_TUNING_TRAILS": "5"})
    assert warnings == [
        "TRAINING_PIPELINE_TUNING_TRAILS is set but the pipeline reads no such setting; "
        "did you mean TRAINING_PIPELINE_TUNING_TRIALS?"
    ]
    assert warnings[0] in caplog.text


def test_valid_urls_pass_without_connecting_anywhere():
    env = {
        "TRAINING_PIPELINE_CRM_URL": "postgresql+psycopg://crm:pw@db.invalid:5432/crm",
        "TRAINING_PIPELINE_OPTUNA_STORAGE": "sqlite:////nonexistent/optuna.db",
        "TRAINING_PIPELINE_API_URL": "https://tickets.invalid/api",
        "TRAINING_PIPELINE_ALERT_WEBHOOK_URL": "",
    }
    # No warning either: the CRM and API variables are named by the churn declarations.
    assert check_settings(env) == []
    assert read("TRAINING_PIPELINE_ALERT_WEBHOOK_URL", env) is None


# --- the cases of issue 15 ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        # Regression: a bare `ValueError: invalid literal for int()` naming no variable.
        ("TRAINING_PIPELINE_TUNING_TRIALS", "abc", "it is not a whole number"),
        # Regression: a bare `ValueError: could not convert string to float`.
        ("TRAINING_PIPELINE_GATE_AUC_FLOOR", "abc", "it is not a number"),
        # Regression: the run started and failed inside ingestion, naming neither.
        # (The churn CRM declaration's url_env, checked like a setting.)
        ("TRAINING_PIPELINE_CRM_URL", "garbage", "it is not a SQLAlchemy database URL"),
        # Regression: the run started and the ticket API was retried five times.
        # (The churn tickets declaration's base_url_env.)
        ("TRAINING_PIPELINE_API_URL", "garbage", "its scheme is not http or https"),
        # Regression: the run started and failed 60 s in, when tuning began.
        ("TRAINING_PIPELINE_TUNING_TRIALS", "0", "it is less than 1"),
    ],
)
def test_a_bad_setting_stops_the_run_command_before_any_run_starts(
    settings, monkeypatch, capsys, variable, value, problem
):
    started = []
    monkeypatch.setattr(runner, "run_everything", lambda *args: started.append(args) or 0)
    monkeypatch.setenv(variable, value)

    code = cli.main(["run"])

    err = capsys.readouterr().err
    assert code == 2 and started == []
    assert f"training-pipeline run: {variable}={value!r} is refused: {problem}" in err
    assert {**VARIABLES, **DECLARED}[variable].allowed in err


@pytest.mark.parametrize("command", [["status"], ["retrain"], ["lineage", "production"]])
def test_every_command_checks_the_settings_first(settings, monkeypatch, capsys, command):
    monkeypatch.setenv("TRAINING_PIPELINE_CRM_URL", "garbage")
    assert cli.main(command) == 2
    assert "TRAINING_PIPELINE_CRM_URL='garbage' is refused" in capsys.readouterr().err
    assert not settings.data_dir.exists()


def load_definitions(tmp_path: Path, code: str, **settings: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINING_PIPELINE_")}
    env |= {"TRAINING_PIPELINE_DATA_DIR": str(tmp_path / "data"), **settings}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )


def test_loading_the_definitions_with_a_bad_setting_names_it(monkeypatch):
    """Regression: the code server failed with a bare ValueError from a config default.

    In process: what the code server runs is ``defs()``; that importing the definitions
    module reads no setting is the next test's subject (in a fresh interpreter).
    """
    from training_pipeline.definitions import defs

    monkeypatch.setenv("TRAINING_PIPELINE_TUNING_TRIALS", "abc")
    with pytest.raises(SettingsError) as refused:
        defs()
    assert "TRAINING_PIPELINE_TUNING_TRIALS='abc' is refused" in str(refused.value)


def test_importing_the_pipeline_reads_no_setting_only_loading_the_definitions_does(tmp_path):
    """Settings are read once, when the definitions load: a module that read one at
    import would fail this import on the bad values below."""
    bad = {variable.name: variable.bad_example for variable in VARIABLES.values()}
    modules = sorted(
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py"
    )
    imported = load_definitions(tmp_path, "; ".join(f"import {m}" for m in modules), **bad)
    assert imported.returncode == 0, imported.stderr
