"""Where a run's steps execute: one setting, ``TRAINING_PIPELINE_EXECUTOR``.

- ``in_process`` (the laptop default): every step in the run's own process, because
  process start-up dominates on a small machine.
- ``multiprocess``: a process per step on the machine that runs the run.
- ``celery``: each step is a task on a message broker, executed by whichever Celery
  worker takes it (``dagster-celery worker start``, see deploy/cluster/); the workers
  must reach the same Dagster instance (PostgreSQL) and the same warehouse.
- ``k8s``: each step in its own Kubernetes job (dagster-k8s, not installed here, and
  not run on this project's machines; deploy/k8s/values.yaml shows the set-up).

Pools hold on every executor: a step waits for its pool's slot wherever it runs, so the
one-slot ``warehouse`` pool still lets one step at a time open the DuckDB file.
``training-pipeline run`` always runs in its own process (it reports step by step on
the terminal); the executor applies to runs launched by the daemon, the UI or
``dagster job launch``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from training_pipeline.environment import (
    CELERY_BACKEND_ENV,
    CELERY_BROKER_ENV,
    CELERY_QUEUE_ENV,
    EXECUTOR_ENV,
    SettingsError,
    is_set,
    read,
)

if TYPE_CHECKING:
    import dagster as dg


@dataclass(frozen=True)
class ExecutionSettings:
    """The executor and, for Celery, where its tasks and results travel.

    The broker and backend URLs may hold passwords: when set through their variables
    they are handed to Dagster by name (``{"env": ...}``), so run configs never show them.
    """

    executor: str = "in_process"
    celery_broker: str = "amqp://guest:guest@127.0.0.1:5672//"
    celery_backend: str = "redis://127.0.0.1:6379/0"
    celery_queue: str = "dagster"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ExecutionSettings:
        return cls(
            executor=read(EXECUTOR_ENV, env),
            celery_broker=read(CELERY_BROKER_ENV, env),
            celery_backend=read(CELERY_BACKEND_ENV, env),
            celery_queue=read(CELERY_QUEUE_ENV, env),
        )


def celery_config(execution: ExecutionSettings) -> dict[str, Any]:
    """The ``celery`` executor's config; workers started with the same values (and
    ``-q <queue>``) take the run's steps."""

    def secret(variable: str, value: str) -> str | dict[str, str]:
        return {"env": variable} if is_set(variable) else value

    return {
        "broker": secret(CELERY_BROKER_ENV, execution.celery_broker),
        "backend": secret(CELERY_BACKEND_ENV, execution.celery_backend),
        # Steps go to this queue only, so two deployments can share one broker.
        "config_source": {"task_default_queue": execution.celery_queue},
    }


def build_executor(execution: ExecutionSettings) -> dg.ExecutorDefinition:
    """The executor ``execution`` names, configured.

    Raises:
        SettingsError: ``celery`` without dagster-celery installed (the ``cluster``
            extra), ``k8s`` without dagster-k8s.
    """
    # Imported here: settings.py imports this module, and whatever reads the settings
    # alone (dbt-parse, the test runner) need not import all of Dagster for it.
    import dagster as dg

    if execution.executor == "in_process":
        return dg.in_process_executor
    if execution.executor == "multiprocess":
        return dg.multiprocess_executor
    if execution.executor == "k8s":
        try:
            from dagster_k8s import k8s_job_executor
        except ImportError:
            raise SettingsError(
                f"{EXECUTOR_ENV}=k8s needs dagster-k8s in the image the steps run in "
                '(pip install dagster-k8s; README "Scaling out")'
            ) from None
        return k8s_job_executor
    try:
        from dagster_celery import celery_executor
    except ImportError:
        raise SettingsError(
            f"{EXECUTOR_ENV}=celery needs dagster-celery: install the project's `cluster` "
            "extra (pip install 'training_pipeline[cluster]'; `make install` does)"
        ) from None
    return celery_executor.configured(celery_config(execution), name="celery")
