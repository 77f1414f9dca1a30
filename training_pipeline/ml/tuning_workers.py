"""One search, its trials fanned out over several worker processes into one stored study.

The study is created once, by the caller, before any worker starts (``open_study``), so
no two workers race to create it.  Worker ``i`` samples with seed ``seed + i``, so the
workers do not draw in step; a trial whose parameters an earlier trial drew is pruned
unevaluated (``studies.refuse_repeat``).  The total is capped exactly: every worker
takes a slot from a counter shared by the processes before it starts a trial, so the
study never holds more than ``n_trials`` trials, however the workers' trials interleave.
(Optuna's ``MaxTrialsCallback`` stops a worker only after its trial ends, so two workers
finishing together could both start one more.)  The time budget is shared the same way:
each worker gets the seconds left when the fan-out started.

Workers are started with ``spawn``: a forked copy of a process with OpenMP or database
threads running may deadlock.  Each gets ``n_threads // n_workers`` threads (at least 1).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING

import optuna
import pandas as pd
from threadpoolctl import threadpool_limits

from training_pipeline.ml.halving import Deadline
from training_pipeline.ml.objective import build_objective
from training_pipeline.ml.problem import ProblemSpec
from training_pipeline.ml.studies import join_study

if TYPE_CHECKING:
    from multiprocessing.sharedctypes import Synchronized

    from training_pipeline.ml.tuning import TuningConfig

# The trial slots left, shared by the workers (set in each by ``_hold_slots``).
_slots: Synchronized[int] | None = None


def _hold_slots(slots: Synchronized[int]) -> None:
    global _slots
    _slots = slots


def _take_slot() -> bool:
    assert _slots is not None, "a tuning worker runs only inside fan_out's processes"
    with _slots.get_lock():
        if _slots.value < 1:
            return False
        _slots.value -= 1
        return True


def _work(
    train: pd.DataFrame, spec: ProblemSpec, config: TuningConfig, worker: int, seconds: float
) -> int:
    """Run trials in the shared study until the slots or the seconds run out; returns
    how many trials this worker ran."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    deadline = Deadline.after(seconds)
    objective, _ = build_objective(train, spec, config, deadline, refuse_repeats=True)
    seed = config.seed + worker
    study = join_study(config, seed)

    def seeded(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker_seed", seed)
        return objective(trial)

    ran = 0
    with threadpool_limits(config.n_threads):
        while deadline.remaining() > 0 and _take_slot():
            study.optimize(seeded, n_trials=1)
            ran += 1
    return ran


def fan_out(
    train: pd.DataFrame, spec: ProblemSpec, config: TuningConfig, trials: int, seconds: float
) -> list[int]:
    """Run ``trials`` more trials of ``config``'s stored study over ``config.n_workers``
    processes within ``seconds``; returns the trials each worker ran.

    Raises:
        RuntimeError: called from a daemonic process, which may not start workers.
        Whatever a worker raised (bad data, an unreachable storage), with its traceback.
    """
    if multiprocessing.current_process().daemon:
        # Python refuses a daemonic process children, with a bare AssertionError.
        raise RuntimeError(
            f"{config.n_workers} tuning workers cannot start from a daemonic process, such "
            "as a step in a Celery worker's prefork child: start the Celery workers with "
            '`--pool threads` (README "Scaling out") or tune with one worker'
        )
    threads = max(1, config.n_threads // config.n_workers)
    worker_config = dataclasses.replace(config, n_threads=threads)
    context = multiprocessing.get_context("spawn")
    slots = context.Value("i", trials)
    with ProcessPoolExecutor(
        config.n_workers, mp_context=context, initializer=_hold_slots, initargs=(slots,)
    ) as pool:
        futures = [
            pool.submit(_work, train, spec, worker_config, worker, seconds)
            for worker in range(config.n_workers)
        ]
        return [future.result() for future in futures]
