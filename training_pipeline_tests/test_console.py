"""`run` keeps the terminal for its own lines: what libraries and child processes print
goes to the log file, and each step that ends is one line with its elapsed time."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import warnings

import dagster as dg
import pytest

from training_pipeline import cli
from training_pipeline.console import (
    StepProgress,
    chatter_to,
    log_path_in,
    step_line,
    warnings_to,
)
from training_pipeline.settings import REPO_ROOT


def test_library_and_child_output_go_to_the_log_and_the_terminal_stream_to_the_terminal(
    tmp_path, capfd
):
    log = log_path_in(tmp_path)
    with chatter_to(log) as terminal:
        print("dbt says: 1 of 68 START sql view model")
        os.write(2, b"alembic: Context impl SQLiteImpl.\n")
        subprocess.run([sys.executable, "-c", "print('child process chatter')"], check=True)
        print("[    1.0 s] raw__orders done in 0.5 s", file=terminal)
        logging.getLogger("training_pipeline.stale_runs").warning("run r1 died; released")
    print("after the block")
    shown = capfd.readouterr()
    step, warning, after = shown.out.splitlines()
    assert step == "[    1.0 s] raw__orders done in 0.5 s" and after == "after the block"
    assert warning.endswith(" WARNING run r1 died; released")
    assert shown.err == ""
    logged = log.read_text()
    for chatter in ("START sql view model", "Context impl SQLiteImpl", "child process chatter"):
        assert chatter in logged


def test_warnings_raised_in_the_block_go_to_the_log_as_they_are_raised(tmp_path, monkeypatch):
    # A library that replaced the global formatter does not change the log's lines.
    monkeypatch.setattr(warnings, "formatwarning", lambda *args, **kwargs: "garbled\n\n")
    log = log_path_in(tmp_path)
    with warnings_to(log):
        warnings.warn("Class `X` is currently in beta", UserWarning, stacklevel=1)
        assert "UserWarning: Class `X` is currently in beta" in log.read_text()
    with warnings.catch_warnings(record=True):
        warnings.warn("after the block", UserWarning, stacklevel=1)
    assert "after the block" not in log.read_text()


def test_a_step_line_names_the_step_its_outcome_and_both_times():
    assert step_line(75.04, "cleaned_tables", "done", 61.25) == (
        "[   75.0 s] cleaned_tables done in 61.2 s"
    )


@pytest.mark.integration
def test_progress_reports_each_ended_step_once_with_its_outcome(tmp_path):
    @dg.asset
    def first() -> None:
        return None

    @dg.asset(deps=[first])
    def second() -> None:
        raise ValueError("broken on purpose")

    lines: list[str] = []
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        run = dg.materialize([first, second], instance=instance, raise_on_error=False)
        progress = StepProgress(instance, run.run_id, out=sys.stdout)
        lines += progress.lines()
        lines += progress.lines()  # nothing ended since
    assert [line.split("] ", 1)[1].split(" in ")[0] for line in lines] == [
        "first done",
        "second FAILED",
    ]


def test_the_readme_lists_every_command_of_the_cli():
    readme = (REPO_ROOT / "README.md").read_text()
    commands = readme.split("## The commands", 1)[1].split("\n## ", 1)[0]
    parser = cli.build_parser()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    missing = [name for name in subparsers.choices if f"training-pipeline {name}" not in commands]
    assert subparsers.choices and missing == []
    assert "make ui PORT=" in commands
