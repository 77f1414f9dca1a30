"""The ``training-pipeline`` command: a small dispatcher over subcommands.

    training-pipeline run
    training-pipeline retrain [--model NAME]
    training-pipeline ui [--host 127.0.0.1] [--port 3000]
    training-pipeline status [--model NAME] [--json] [--last N]
    training-pipeline rollback [--model NAME] [--to VERSION] [--reason TEXT] [--pin]
    training-pipeline pin|unpin [--model NAME] [--reason TEXT]
    training-pipeline lineage VERSION|production [--model NAME] [--json]
    training-pipeline reproduce VERSION|production [--model NAME]
    training-pipeline new-model NAME --features REL --label COL --id-column COL [--task T]
        [--time-column COL] [--gate-bound NUMBER] [--numeric COL,..] [--categorical COL,..]
    training-pipeline dbt-sources [--check]

``--model`` names one of the models the project declares; without it, the only one.

Each subcommand registers its own parser and handler; the heavy imports happen inside
the handlers so that ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from training_pipeline.cli_dbt import add_dbt_commands
from training_pipeline.cli_lifecycle import add_lifecycle_commands
from training_pipeline.cli_reproduce import add_reproduce_command
from training_pipeline.cli_scaffold import add_scaffold_commands
from training_pipeline.cli_serve import add_serve_command
from training_pipeline.environment import SettingsError
from training_pipeline.settings import Settings
from training_pipeline.source_declarations import check_settings

if TYPE_CHECKING:
    from training_pipeline.ml.registry import ModelRegistry


Handler = Callable[[argparse.Namespace], int]


def _loads_project(handler: Handler) -> Handler:
    """Report a wrong declaration (its file, instance and field) instead of a traceback;
    Python warnings go to the pipeline's log file (``console.warnings_to``)."""

    def run(args: argparse.Namespace) -> int:
        # Imported here: the components package pulls in dagster, which --help must not.
        from training_pipeline.components.errors import DeclarationError, ProjectError
        from training_pipeline.console import log_path_in, warnings_to
        from training_pipeline.project import ManifestMissing

        try:
            with warnings_to(log_path_in(Settings.from_env().data_dir)):
                return handler(args)
        except (ProjectError, DeclarationError, ManifestMissing) as error:
            print(f"training-pipeline {args.command}: {error}", file=sys.stderr)
            return 2

    return run


def _run(args: argparse.Namespace) -> int:
    from training_pipeline.runner import run_everything

    return run_everything(Settings.from_env())


def _retrain(args: argparse.Namespace) -> int:
    from training_pipeline.components.models import ModelChoiceError, chosen_model
    from training_pipeline.runner import run_everything

    settings = Settings.from_env()
    try:
        model = chosen_model(settings, args.model)
    except ModelChoiceError as error:
        print(f"training-pipeline retrain: {error}", file=sys.stderr)
        return 1
    return run_everything(settings, model=model)


def _ui(args: argparse.Namespace) -> int:
    from training_pipeline.runner import run_ui

    return run_ui(Settings.from_env(), args.host, args.port)


def _add_pipeline_commands(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run",
        help="materialize the whole asset graph headless and print a summary",
        description=(
            "Runs the materialize_everything job in this process against the Dagster "
            "home in DAGSTER_HOME (default: dagster_home/ in the repo), so the run shows "
            "up in the UI's history. Starts the companions the project needs for the run "
            "(e.g. an example's demo API when a declaration points at its address)."
        ),
    )
    run.set_defaults(handler=_loads_project(_run))
    retrain = commands.add_parser(
        "retrain",
        help="run one model's part of the retrain_on_latest_data job now",
        description="For one model: ingests what is new in the sources it reads, rebuilds "
        "its features, trains a candidate (unless the training set is unchanged) and deploys "
        "it only if it passes the gate; prints the same summary as `run`.",
    )
    _add_model_option(retrain)
    retrain.set_defaults(handler=_loads_project(_retrain))
    ui = commands.add_parser(
        "ui", help="start the Dagster UI (dagster dev) with the project's companions beside it"
    )
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(handler=_ui)


def _add_model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        metavar="NAME",
        help="a model the project declares (default: the only one)",
    )


def _model_registry(args: argparse.Namespace) -> ModelRegistry:
    from training_pipeline.components.models import model_registry

    return model_registry(Settings.from_env(), args.model)


def _status(args: argparse.Namespace) -> int:
    import json

    from training_pipeline.components.models import ModelChoiceError
    from training_pipeline.ml.artifacts import RegistryError
    from training_pipeline.ml.status import format_status, registry_status

    try:
        status = registry_status(_model_registry(args), last=args.last)
    except (RegistryError, ModelChoiceError) as error:
        print(f"training-pipeline status: {error}", file=sys.stderr)
        return 1
    print(json.dumps(status, indent=2, sort_keys=True) if args.json else format_status(status))
    if status["production_verified"] is False:
        print(
            f"training-pipeline status: production model {status['production']['version']} "
            f"FAILED verification: {status['production_verification_error']}",
            file=sys.stderr,
        )
        return 1
    return 0


def _add_model_commands(commands: argparse._SubParsersAction) -> None:
    status = commands.add_parser(
        "status",
        help="show the production model, its metrics and training batches, and recent versions",
        description=(
            "Reads the model registry in $TRAINING_PIPELINE_DATA_DIR/models/<model> (or "
            "$TRAINING_PIPELINE_REGISTRY_URL/<model> on S3; --model, "
            "or the project's only model) and verifies the production artifact; exits 1 when it "
            "fails verification. --json prints the "
            "object documented in training_pipeline/ml/status.py (schema_version 1)."
        ),
    )
    _add_model_option(status)
    status.add_argument("--json", action="store_true", help="print a stable JSON object")
    status.add_argument(
        "--last", type=_non_negative, default=5, help="versions and changes to list (default 5)"
    )
    status.set_defaults(handler=_loads_project(_status))


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def _lineage(args: argparse.Namespace) -> int:
    import json

    from training_pipeline.lineage import LineageError, model_lineage
    from training_pipeline.lineage_tree import format_lineage

    try:
        lineage = model_lineage(Settings.from_env(), args.version, args.model)
    except LineageError as error:
        print(f"training-pipeline lineage: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(lineage.to_dict(), indent=2, sort_keys=True))
    else:
        print(format_lineage(lineage))
    return 0


def _add_lineage_commands(commands: argparse._SubParsersAction) -> None:
    lineage = commands.add_parser(
        "lineage",
        help="trace a model version to its training set, ingestion batches, files and pages",
        description=(
            "Follows VERSION (or `production` / `previous_production`) through the registry "
            "to the training-set export, the ingestion batches behind it and, per batch, the "
            "files (with sha256), API pages and database queries it read. Reads the "
            "warehouse read-only. --json prints the object documented in "
            "training_pipeline/lineage.py (schema_version 1)."
        ),
    )
    lineage.add_argument("version", metavar="VERSION", help="a version id, or `production`")
    _add_model_option(lineage)
    lineage.add_argument("--json", action="store_true", help="print a stable JSON object")
    lineage.set_defaults(handler=_loads_project(_lineage))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="training-pipeline")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_pipeline_commands(commands)
    _add_model_commands(commands)
    add_lifecycle_commands(commands, _loads_project, _add_model_option)
    _add_lineage_commands(commands)
    add_reproduce_command(commands, _loads_project)
    add_dbt_commands(commands)
    add_scaffold_commands(commands)
    add_serve_command(commands, _loads_project)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    # Every setting is checked before any command does anything, so a bad one stops
    # `run` before a run starts, and the message names the variable and what is allowed.
    try:
        check_settings()
        return args.handler(args)
    except SettingsError as error:
        print(f"training-pipeline {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
