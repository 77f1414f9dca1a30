"""Benchmark: tuning on a large synthetic binary problem within a time budget.

Generates ``--rows`` rows of ``--features`` features (a third categorical) with a weekly
time column, runs the training workflow (tune with successive halving, refit on all
training rows, threshold, holdout score) once within ``--budget`` seconds and once with
the trial budget only, and prints trial counts, wall times and holdout ROC AUCs.

    .venv/bin/python scripts/bench_tuning.py --rows 300000 --budget 120 --threads 2

Targets (issue 9): >= 20 completed or pruned trials within 120 s on 2 cores at 300k x 15,
and the budgeted winner's holdout ROC AUC within 0.005 of the unbudgeted search's.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification

from training_pipeline.ml.problem import GatePolicy, ProblemSpec
from training_pipeline.ml.tasks import TASKS
from training_pipeline.ml.tuning import TuningConfig
from training_pipeline.ml.workflow import train_candidate

HOLDOUT_SNAPSHOTS = 2


def synthetic_problem(
    rows: int, features: int, weeks: int, seed: int
) -> tuple[pd.DataFrame, ProblemSpec]:
    """A binary problem with numeric and categorical features and weekly snapshot dates."""
    x, y = make_classification(
        n_samples=rows,
        n_features=features,
        n_informative=max(2, features // 2),
        n_redundant=features // 5,
        weights=[0.8],
        flip_y=0.05,
        class_sep=0.7,
        random_state=seed,
    )
    n_categorical = features // 3
    frame = pd.DataFrame({f"x{i}": x[:, i] for i in range(features - n_categorical)})
    levels = np.array(list("abcdefghij"))
    for i in range(features - n_categorical, features):
        # Ten quantile bins of an informative column, named by letter.
        bins = pd.qcut(x[:, i], 10, labels=False)
        frame[f"c{i}"] = levels[bins]
    rng = np.random.default_rng(seed)
    frame["week"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(
        7 * rng.integers(0, weeks, rows), unit="D"
    )
    frame["row_id"] = np.arange(rows)
    frame["label"] = y
    spec = ProblemSpec(
        name="benchmark",
        description="A synthetic binary problem for timing the tuner.",
        label_description="make_classification's class.",
        relation="(benchmark frame)",
        gate=GatePolicy("roc_auc", floor=0.5),
        id_column="row_id",
        time_column="week",
        label="label",
        numeric=tuple(c for c in frame.columns if c.startswith("x")),
        categorical=tuple(c for c in frame.columns if c.startswith("c")),
        label_horizon=timedelta(days=7),
    )
    return frame, spec


def run(frame: pd.DataFrame, spec: ProblemSpec, config: TuningConfig) -> dict[str, Any]:
    started = time.perf_counter()
    candidate = train_candidate(frame, spec, config, HOLDOUT_SNAPSHOTS)
    tuning = candidate.tuning
    deepest = Counter(
        round(t["sample_fraction"], 4) for t in tuning.trial_history if t["sample_fraction"]
    )
    stopped = Counter(t["stopped_by"] for t in tuning.trial_history if t["stopped_by"])
    return {
        "completed": tuning.n_trials_completed,
        "pruned": tuning.n_pruned,
        "pruned_by": dict(stopped),
        "trials_by_deepest_sample": dict(sorted(deepest.items())),
        "sample_fractions": [round(f, 4) for f in tuning.rung_fractions],
        "tuning_s": round(tuning.duration_s, 1),
        "total_s": round(time.perf_counter() - started, 1),
        "family": tuning.family,
        "cv_roc_auc": round(tuning.cv_score, 4),
        "cv_sample_fraction": tuning.sample_fraction,
        "holdout_roc_auc": round(candidate.metrics["roc_auc"], 4),
        "train_rows": candidate.train_rows,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--features", type=int, default=15)
    parser.add_argument("--weeks", type=int, default=60)
    parser.add_argument("--budget", type=float, default=120.0, help="seconds for tuning")
    parser.add_argument("--trials", type=int, default=40, help="trial budget of both runs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-rung-rows", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--families", nargs="+", default=list(TASKS["binary"].families))
    parser.add_argument("--skip-unbudgeted", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    frame, spec = synthetic_problem(args.rows, args.features, args.weeks, args.seed)
    base = {
        "n_trials": args.trials,
        "seed": args.seed,
        "n_threads": args.threads,
        "min_rung_rows": args.min_rung_rows,
        "families": tuple(args.families),
    }
    print(f"rows {args.rows} x {args.features} features, {args.threads} thread(s)")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    figures: dict[str, Any] = {"rows": args.rows, "features": args.features}
    figures["budgeted"] = run(frame, spec, TuningConfig(timeout_s=args.budget, **base))
    figures["budgeted"]["budget_s"] = args.budget
    figures["budgeted"]["overrun_s"] = round(figures["budgeted"]["tuning_s"] - args.budget, 1)
    print(f"load average after budgeted run: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("budgeted:", json.dumps(figures["budgeted"]))
    if not args.skip_unbudgeted:
        figures["unbudgeted"] = run(frame, spec, TuningConfig(timeout_s=None, **base))
        print("unbudgeted:", json.dumps(figures["unbudgeted"]))
        delta = figures["budgeted"]["holdout_roc_auc"] - figures["unbudgeted"]["holdout_roc_auc"]
        figures["holdout_roc_auc_difference"] = round(delta, 4)
        print(f"holdout ROC AUC, budgeted - unbudgeted: {delta:+.4f}")
    figures["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
