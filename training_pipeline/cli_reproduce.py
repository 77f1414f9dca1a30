"""``training-pipeline reproduce VERSION [--model NAME]``: rebuild a registered version
from its stored training set, problem, family, hyperparameters and seeds, and check the
result against the registered artifact (``ml/reproduce.py``).

Exit codes: 0 reproduced; 1 not reproduced (predictions or metrics differ) or the
version cannot be rebuilt (training set missing or altered, unknown version).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from training_pipeline.settings import Settings

PRODUCTION = "production"


def _reproduce(args: argparse.Namespace) -> int:
    from training_pipeline.components.models import ModelChoiceError, model_registry
    from training_pipeline.ml.artifacts import RegistryError
    from training_pipeline.ml.reproduce import ReproductionError, reproduce

    try:
        registry = model_registry(Settings.from_env(), args.model)
        version = args.version
        if version == PRODUCTION:
            production = registry.production()
            if production is None:
                raise ReproductionError("there is no production model to reproduce")
            version = production.version
        result = reproduce(registry, version)
    except (ReproductionError, RegistryError, ModelChoiceError) as error:
        print(f"training-pipeline reproduce: {error}", file=sys.stderr)
        return 1
    print(result.text())
    return 0 if result.passed else 1


Handler = Callable[[argparse.Namespace], int]


def add_reproduce_command(
    commands: argparse._SubParsersAction, loads_project: Callable[[Handler], Handler]
) -> None:
    """``loads_project`` turns a wrong declaration into a message (``cli._loads_project``)."""
    command = commands.add_parser(
        "reproduce",
        help="rebuild a model version from its registered training set and verify it",
        description=(
            "Refits VERSION (or `production`) from the training set stored with it (its "
            "sha256 checked), its problem, family, hyperparameters and seeds; compares the "
            "holdout predictions and metrics with the registered version's and lists any "
            "library version that differs from the registered ones. Exit 1 on a mismatch."
        ),
    )
    command.add_argument("version", metavar="VERSION", help="a version id, or `production`")
    command.add_argument(
        "--model", metavar="NAME", help="a model the project declares (default: the only one)"
    )
    command.set_defaults(handler=loads_project(_reproduce))
