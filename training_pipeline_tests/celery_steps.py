"""Jobs for the Celery executor tests: a small one whose steps record which worker ran
them and when, so a test can tell that two workers took steps and that pool members never
overlap; and the project's own one-button job.

The workers import this module to run a step, so each job is built by a function
(``dg.reconstructable``) from the settings of the process that calls it.
"""
# No `from __future__ import annotations`: Dagster reads the op's config class from its
# annotation, which a string would hide inside the closure.

import json
import os
import time
from pathlib import Path

import dagster as dg

from training_pipeline.execution import ExecutionSettings, build_executor
from training_pipeline.resources import WAREHOUSE_POOL
from training_pipeline.settings import Settings

WORKER_NAME_ENV = "TP_TEST_CELERY_WORKER"
FREE_STEPS = [f"feature_{i}" for i in range(4)]
WAREHOUSE_STEPS = [f"warehouse_{i}" for i in range(2)]


class StepLog(dg.Config):
    path: str
    seconds: float = 2.0


def _step(name: str, pool: str | None = None) -> dg.OpDefinition:
    @dg.op(name=name, pool=pool)
    def step(config: StepLog) -> None:
        started = time.time()
        time.sleep(config.seconds)
        line = {
            "step": name,
            "worker": os.environ.get(WORKER_NAME_ENV),
            "started": started,
            "ended": time.time(),
        }
        with Path(config.path).open("a") as log:
            log.write(json.dumps(line) + "\n")

    return step


def recorded_steps() -> dg.JobDefinition:
    """Four independent steps, and two in the one-slot warehouse pool."""
    steps = [_step(n) for n in FREE_STEPS] + [_step(n, WAREHOUSE_POOL) for n in WAREHOUSE_STEPS]

    @dg.job(executor_def=build_executor(ExecutionSettings.from_env()))
    def recorded() -> None:
        for step in steps:
            step()

    return recorded


def run_config(log_path: Path, seconds: float) -> dict:
    config = {"config": {"path": str(log_path), "seconds": seconds}}
    return {"ops": {name: config for name in FREE_STEPS + WAREHOUSE_STEPS}}


def one_button_job() -> dg.JobDefinition:
    """``retrain_on_latest_data`` of the definitions this process's settings build: the
    launching process and every worker build it alike from the same environment."""
    from training_pipeline.definitions import build_definitions
    from training_pipeline.runner import JOB_NAME

    return build_definitions(Settings.from_env()).resolve_job_def(JOB_NAME)
