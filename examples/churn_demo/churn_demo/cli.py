"""The ``churn-demo`` command: the churn example's source systems, on demand.

    churn-demo world [--days N] [--customers N] [--seed S] [--if-missing] [--drift]
    churn-demo api [--host 127.0.0.1] [--port 8765]
    churn-demo chaos --data-dir DIR [--rounds N] [--seed S] ...

Paths come from the pipeline's settings (TRAINING_PIPELINE_DATA_DIR) and the example's
source declarations (the CRM's url_env, the order files' landing folder; see
``churn_demo/declared.py``), so the world lands where ``training-pipeline run`` reads.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from churn_demo.api_server import DEMO_API_HOST, DEMO_API_PORT
from training_pipeline.environment import SettingsError
from training_pipeline.settings import Settings
from training_pipeline.source_declarations import check_settings


def _world(args: argparse.Namespace) -> int:
    from churn_demo import generator

    settings = Settings.from_env()
    run = generator.generate_if_missing if args.if_missing else generator.generate
    try:
        summary = run(
            settings, args.days, customers=args.customers, seed=args.seed, drift=args.drift
        )
    except ValueError as error:
        print(f"churn-demo world: {error}", file=sys.stderr)
        return 2
    if summary is None:
        print(f"demo data already present in {settings.data_dir}; nothing to do")
    else:
        drifted = f", {summary.drifted} of them new drifted days" if summary.drifted else ""
        print(f"demo data in {settings.data_dir} ({summary.state.days_generated} days{drifted})")
    return 0


def _api(args: argparse.Namespace) -> int:
    from churn_demo.api_server import DemoApiServer

    DemoApiServer(Settings.from_env(), args.host, args.port).run_until_signalled()
    return 0


def _chaos(args: argparse.Namespace) -> int:
    from churn_demo import chaos

    return chaos.main(args.rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="churn-demo", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    world = commands.add_parser(
        "world",
        help="generate or extend the demo source systems (CRM, order files, tickets)",
        description=(
            "Without data: create a demo world (default 1500 customers, 270 days). "
            "With data: append --days further days (default 1) to the same world. "
            "Paths come from TRAINING_PIPELINE_DATA_DIR and the churn example's source "
            "declarations (the CRM's url_env, TRAINING_PIPELINE_CRM_URL)."
        ),
    )
    world.add_argument("--days", type=int, help="days to generate (new: 270, append: 1)")
    world.add_argument("--customers", type=int, help="customers at the start (new world only)")
    world.add_argument("--seed", type=int, help="random seed (new world only; default 42)")
    world.add_argument(
        "--if-missing", action="store_true", help="do nothing if demo data already exists"
    )
    world.add_argument(
        "--drift",
        action="store_true",
        help="make the new days drifted: amounts in cents, a wave of badly rated complaints and a "
        "CRM sync rewriting segment and country (churn_demo/drift_day.py)",
    )
    world.set_defaults(handler=_world)
    api = commands.add_parser(
        "api", help="serve the demo ticket API in the foreground until interrupted"
    )
    api.add_argument("--host", default=DEMO_API_HOST)
    api.add_argument("--port", type=int, default=DEMO_API_PORT)
    api.set_defaults(handler=_api)
    chaos = commands.add_parser(
        "chaos",
        add_help=False,
        help="land bad files, kill runs, rerun, print the reconciliation (chaos --help)",
    )
    chaos.set_defaults(handler=_chaos)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    parser = build_parser()
    # `chaos` parses its own options (churn_demo/chaos.py); the others take no extras.
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "chaos":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    try:
        check_settings()
        return args.handler(args)
    except SettingsError as error:
        print(f"churn-demo {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
