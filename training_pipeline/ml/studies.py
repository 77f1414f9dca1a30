"""Optuna studies for tuning: opened, resumed only on matching data, read back.

A stored study carries a fingerprint of the data and search settings, so a rerun of the
same run resumes it and any other run with the same study name is refused rather than
mixed in.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from training_pipeline.masking import password_masked
from training_pipeline.ml.metrics import METRICS
from training_pipeline.ml.problem import ProblemSpec

if TYPE_CHECKING:
    from training_pipeline.ml.tuning import TuningConfig

# Settings that change what a trial computes; threads and budgets do not.
_FINGERPRINTED = (
    *("seed", "n_folds", "valid_snapshots", "metric"),
    *("reduction_factor", "min_rung_rows", "max_rungs"),
)


def fingerprint(frame: pd.DataFrame, spec: ProblemSpec, config: TuningConfig) -> str:
    """A hash of the data and search settings; a stored study only resumes on a match."""
    digest = hashlib.sha256(
        pd.util.hash_pandas_object(frame[list(spec.columns)], index=False).to_numpy().tobytes()
    )
    settings = {k: getattr(config, k) for k in _FINGERPRINTED}
    digest.update(json.dumps({**settings, "families": list(config.families)}).encode())
    return digest.hexdigest()[:16]


def _pruner(config: TuningConfig) -> optuna.pruners.BasePruner:
    # The resource is a rung's step, eta**k: a trial goes on to the next rung only
    # when it is in the top 1/eta of the values reported at its rung so far.
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=1, reduction_factor=config.reduction_factor
    )


def open_study(config: TuningConfig, data_fingerprint: str) -> optuna.Study:
    study = optuna.create_study(
        storage=config.storage_url,
        study_name=config.study_name,
        direction="maximize" if METRICS[str(config.metric)].greater_is_better else "minimize",
        sampler=optuna.samplers.TPESampler(seed=config.seed),
        pruner=_pruner(config),
        load_if_exists=True,
    )
    stored = study.user_attrs.get("fingerprint")
    if stored is None and study.trials:
        stored = "unknown"
    if stored not in (None, data_fingerprint):
        raise ValueError(
            f"study {config.study_name!r} already exists in "
            f"{password_masked(config.storage_url)} with other data or settings; give each "
            "run its own study name (include the run id)"
        )
    study.set_user_attr("fingerprint", data_fingerprint)
    return study


def join_study(config: TuningConfig, seed: int) -> optuna.Study:
    """The stored study ``open_study`` created, as one worker process samples it: with
    its own sampler seed, so workers do not draw the same configurations in step."""
    return optuna.load_study(
        study_name=config.study_name,
        storage=config.storage_url,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=_pruner(config),
    )


def refuse_repeat(trial: optuna.Trial) -> None:
    """Prune ``trial`` when an earlier trial of its study drew the same parameters.

    Parameters are stored as they are drawn, so of two workers holding the same set the
    later trial (higher number) sees the earlier one and yields to it.  An earlier trial
    still drawing its parameters is not comparable yet; workers with distinct seeds
    draw one configuration twice only by coincidence, so that window stays open.
    """
    for other in trial.study.get_trials(deepcopy=False):
        if other.number < trial.number and other.params == trial.params:
            trial.set_user_attr("stopped_by", f"repeats trial {other.number}")
            raise optuna.TrialPruned(f"repeats the parameters of trial {other.number}")


def history(study: optuna.Study) -> list[dict[str, Any]]:
    return [
        {
            "number": t.number,
            "state": t.state.name.lower(),
            "family": t.params.get("family"),
            # Optuna gives a pruned trial its last rung's score; that is no CV score.
            "value": t.value if t.state == TrialState.COMPLETE else None,
            "params": t.user_attrs.get("params"),
            # Per fold, at the deepest rung the trial finished.
            "fold_scores": t.user_attrs.get("fold_scores", []),
            "sample_fraction": t.user_attrs.get("sample_fraction"),
            "rung_scores": [t.intermediate_values[k] for k in sorted(t.intermediate_values)],
            "stopped_by": t.user_attrs.get("stopped_by"),
            "duration_s": None if t.duration is None else t.duration.total_seconds(),
        }
        for t in study.trials
    ]


def chosen(study: optuna.Study) -> FrozenTrial:
    """The best trial at the deepest rung at which trials were compared.

    Without a time budget this is the best complete trial: the best trial at a rung is
    always promoted, so it reaches the next rung too.  When the budget stopped the
    leaders before the full sample, the deepest rung may hold only the trial that
    happened to go all the way first; the best of the deepest rung with two or more
    trials (on the same rows) is chosen instead, and refitted on every row.
    """
    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    scored = [t for t in study.trials if t.state in finished and t.intermediate_values]
    if not scored:
        raise ValueError("no tuning trial finished a rung; give tuning more time")
    steps = sorted({step for t in scored for step in t.intermediate_values}, reverse=True)
    for step in steps:
        at_step = [t for t in scored if step in t.intermediate_values]
        if len(at_step) >= 2:
            break
    best = max if study.direction == optuna.study.StudyDirection.MAXIMIZE else min
    return best(at_step, key=lambda t: t.intermediate_values[step])
