"""``training-pipeline new-model``: start a model's declaration from every field of the spec.

The file goes where the churn example keeps its model, ``<project>/defs/<name>/model/
defs.yaml``, so the project loader finds it; an existing file is never overwritten.
"""

from __future__ import annotations

import argparse
import sys

from training_pipeline.settings import Settings

MODEL_FILE = ("model", "defs.yaml")


def _new_model(args: argparse.Namespace) -> int:
    from training_pipeline.spec.model_skeleton import SkeletonError, model_skeleton, skeleton_values

    path = Settings.from_env().project_dir.joinpath("defs", args.name, *MODEL_FILE)
    if path.exists():
        print(f"training-pipeline new-model: {path} exists; nothing written", file=sys.stderr)
        return 1
    try:
        values = skeleton_values(
            args.name,
            args.features,
            args.label,
            args.id_column,
            task=args.task,
            time_column=args.time_column,
            gate_bound=args.gate_bound,
            numeric=args.numeric,
            categorical=args.categorical,
        )
        text = model_skeleton(values)
    except SkeletonError as error:
        print(f"training-pipeline new-model {args.name}: {error}", file=sys.stderr)
        return 2
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(
        f"wrote {path}: every field of the model with its default; edit, then run "
        f"`training-pipeline status --model {args.name}` to check that it loads"
    )
    return 0


def add_scaffold_commands(commands: argparse._SubParsersAction) -> None:
    new_model = commands.add_parser(
        "new-model",
        help="write a model's defs.yaml with every field, its default and what it allows",
        description=(
            "Writes <project>/defs/NAME/model/defs.yaml (project: "
            "TRAINING_PIPELINE_PROJECT_DIR). Refuses to overwrite. The features model and "
            "the columns are checked against the dbt manifest when the project loads."
        ),
    )
    new_model.add_argument("name", metavar="NAME", help="the model's name, e.g. late_flights")
    new_model.add_argument(
        "--features", required=True, metavar="REL", help="the dbt features model, <schema>.<model>"
    )
    new_model.add_argument("--label", required=True, metavar="COL", help="the column to predict")
    new_model.add_argument(
        "--id-column", required=True, metavar="COL", help="the column naming a row's entity"
    )
    new_model.add_argument(
        "--task", default="binary", choices=("binary", "multiclass", "regression")
    )
    new_model.add_argument(
        "--time-column", metavar="COL", help="date column to split on (else a random holdout)"
    )
    new_model.add_argument(
        "--gate-bound",
        type=float,
        metavar="NUMBER",
        help="the gate's floor (higher-is-better metric; default 0.5) or ceiling (rmse: "
        "required, in the label's units)",
    )
    for role in ("numeric", "categorical"):
        new_model.add_argument(
            f"--{role}",
            type=_columns,
            metavar="COL,COL",
            help=f"the {role} features (default: inferred from the warehouse types)",
        )
    new_model.set_defaults(handler=_new_model)


def _columns(text: str) -> tuple[str, ...]:
    columns = tuple(c.strip() for c in text.split(","))
    if not all(columns):
        raise argparse.ArgumentTypeError(f"expected COL,COL,... without empty names, got {text!r}")
    return columns
