"""The ``training-pipeline`` command: a small dispatcher over subcommands.

    training-pipeline demo [--days N] [--customers N] [--seed S] [--if-missing] [--drift]
    training-pipeline demo api [--host 127.0.0.1] [--port 8765]
    training-pipeline run
    training-pipeline retrain
    training-pipeline ui [--host 127.0.0.1] [--port 3000]
    training-pipeline status [--json] [--last N]
    training-pipeline rollback [--to VERSION] [--reason TEXT]
    training-pipeline lineage VERSION|production [--json]

Each subcommand registers its own parser and handler; the heavy imports happen inside
the handlers so that ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from training_pipeline.environment import SettingsError, check_environment
from training_pipeline.settings import DEFAULT_API_HOST, DEFAULT_API_PORT, Settings

if TYPE_CHECKING:
    from training_pipeline.ml.registry import ModelRegistry


def _demo(args: argparse.Namespace) -> int:
    from training_pipeline.demo import generator

    settings = Settings.from_env()
    run = generator.generate_if_missing if args.if_missing else generator.generate
    try:
        summary = run(
            settings, args.days, customers=args.customers, seed=args.seed, drift=args.drift
        )
    except ValueError as error:
        print(f"training-pipeline demo: {error}", file=sys.stderr)
        return 2
    if summary is None:
        print(f"demo data already present in {settings.data_dir}; nothing to do")
    else:
        drifted = f", {summary.drifted} of them new drifted days" if summary.drifted else ""
        print(f"demo data in {settings.data_dir} ({summary.state.days_generated} days{drifted})")
    return 0


def _demo_api(args: argparse.Namespace) -> int:
    from training_pipeline.demo.api_server import DemoApiServer

    DemoApiServer(Settings.from_env(), args.host, args.port).run_until_signalled()
    return 0


def _add_demo_commands(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser(
        "demo",
        help="generate or extend the demo source systems (CRM, order files, tickets)",
        description=(
            "Without data: create a demo world (default 1500 customers, 270 days). "
            "With data: append --days further days (default 1) to the same world. "
            "Paths come from TRAINING_PIPELINE_DATA_DIR / TRAINING_PIPELINE_CRM_URL."
        ),
    )
    demo.add_argument("--days", type=int, help="days to generate (new: 270, append: 1)")
    demo.add_argument("--customers", type=int, help="customers at the start (new world only)")
    demo.add_argument("--seed", type=int, help="random seed (new world only; default 42)")
    demo.add_argument(
        "--if-missing", action="store_true", help="do nothing if demo data already exists"
    )
    demo.add_argument(
        "--drift",
        action="store_true",
        help="make the new days drifted: amounts in cents, a wave of badly rated complaints and a "
        "CRM sync rewriting segment and country (training_pipeline/demo/drift_day.py)",
    )
    demo.set_defaults(handler=_demo)
    demo_commands = demo.add_subparsers(dest="demo_command", metavar="{api}")
    api = demo_commands.add_parser(
        "api", help="serve the demo ticket API in the foreground until interrupted"
    )
    api.add_argument("--host", default=DEFAULT_API_HOST)
    api.add_argument("--port", type=int, default=DEFAULT_API_PORT)
    api.set_defaults(handler=_demo_api)


def _run(args: argparse.Namespace) -> int:
    from training_pipeline.runner import run_everything

    return run_everything(Settings.from_env())


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
            "up in the UI's history. Starts the demo ticket API for the run when the "
            "configured API is the demo default."
        ),
    )
    run.set_defaults(handler=_run)
    retrain = commands.add_parser(
        "retrain",
        help="run the retrain_on_latest_data job now (what the UI's button launches)",
        description="Ingests what is new, rebuilds features, trains a candidate and deploys "
        "it only if it passes the gate; prints the same summary as `run`.",
    )
    retrain.set_defaults(handler=_run)
    ui = commands.add_parser(
        "ui", help="start the Dagster UI (dagster dev) with the demo ticket API beside it"
    )
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(handler=_ui)


MODEL_HELP = "the declared model (default: the only one)"


def _model_registry(requested: str | None) -> ModelRegistry:
    from training_pipeline.components.models import model_registry

    return model_registry(Settings.from_env(), requested)


def _status(args: argparse.Namespace) -> int:
    import json

    from training_pipeline.components.models import ModelChoiceError
    from training_pipeline.ml.artifacts import RegistryError
    from training_pipeline.ml.status import format_status, registry_status

    try:
        status = registry_status(_model_registry(args.model), last=args.last)
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


def _rollback(args: argparse.Namespace) -> int:
    from training_pipeline.components.models import ModelChoiceError
    from training_pipeline.ml.artifacts import RegistryError

    try:
        change = _model_registry(args.model).rollback(to=args.to, reason=args.reason)
    except (RegistryError, ModelChoiceError) as error:
        print(f"training-pipeline rollback: {error}", file=sys.stderr)
        return 1
    print(
        f"rolled back: production is now {change.after.production} "
        f"(was {change.before.production}); recorded as {change.reason!r} by {change.actor}"
    )
    return 0


def _add_model_commands(commands: argparse._SubParsersAction) -> None:
    status = commands.add_parser(
        "status",
        help="show the production model, its metrics and training batches, and recent versions",
        description=(
            "Reads the model registry in $TRAINING_PIPELINE_DATA_DIR/models/<model> (the "
            "project's only model) and verifies the production artifact; exits 1 when it "
            "fails verification. --json prints the "
            "object documented in training_pipeline/ml/status.py (schema_version 1)."
        ),
    )
    status.add_argument("--json", action="store_true", help="print a stable JSON object")
    status.add_argument("--model", help=MODEL_HELP)
    status.add_argument(
        "--last", type=_non_negative, default=5, help="versions and changes to list (default 5)"
    )
    status.set_defaults(handler=_status)
    rollback = commands.add_parser(
        "rollback",
        help="put the previous production model (or --to VERSION) back into production",
        description=(
            "The version restored is verified exactly as on promotion (hash, scikit-learn "
            "version, trusted types) before production moves; nothing changes otherwise."
        ),
    )
    rollback.add_argument("--to", metavar="VERSION", help="restore this version instead")
    rollback.add_argument("--model", help=MODEL_HELP)
    rollback.add_argument("--reason", default="rollback", help="recorded in the alias history")
    rollback.set_defaults(handler=_rollback)


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def _lineage(args: argparse.Namespace) -> int:
    import json

    from training_pipeline.lineage import LineageError, format_lineage, model_lineage

    try:
        lineage = model_lineage(Settings.from_env(), args.version)
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
            "order files (with sha256), API pages and CRM queries it read. Reads the "
            "warehouse read-only. --json prints the object documented in "
            "training_pipeline/lineage.py (schema_version 1)."
        ),
    )
    lineage.add_argument("version", metavar="VERSION", help="a version id, or `production`")
    lineage.add_argument("--json", action="store_true", help="print a stable JSON object")
    lineage.set_defaults(handler=_lineage)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="training-pipeline")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_demo_commands(commands)
    _add_pipeline_commands(commands)
    _add_model_commands(commands)
    _add_lineage_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    # Every setting is checked before any command does anything, so a bad one stops
    # `run` before a run starts, and the message names the variable and what is allowed.
    try:
        check_environment()
        return args.handler(args)
    except SettingsError as error:
        print(f"training-pipeline {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
