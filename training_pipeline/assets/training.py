"""Features to a tuned candidate model: the training stage of the graph."""

import dataclasses
from pathlib import Path

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from training_pipeline.assets.churn_spec import CHURN
from training_pipeline.assets.dbt import cleaned_tables
from training_pipeline.automation.policy import RetrainingPolicy
from training_pipeline.masking import password_masked
from training_pipeline.ml.datasets import TrainingSet, export_training_set, load_training_set
from training_pipeline.ml.halving import default_threads
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.ml.tuning import TuningConfig, optimization_history_html
from training_pipeline.ml.workflow import train_candidate
from training_pipeline.resources import (
    TRAINING_POOL,
    WAREHOUSE_POOL,
    ModelStoreResource,
    WarehouseResource,
)
from training_pipeline.settings import ModelDefaults

GROUP = "training"
OWNERS = ["team:ml"]
CUSTOMER_SNAPSHOTS = get_asset_key_for_model([cleaned_tables], "customer_snapshots")
TRAINING_DATASET = dg.AssetKey("training_dataset")


def _training_trigger(policy: RetrainingPolicy) -> dg.AutomationCondition | None:
    """on_new_data: every features refresh; cron: the policy's schedule; on_drift: none
    here, the drift sensor requests retraining."""
    if policy.mode == "on_new_data":
        return dg.AutomationCondition.eager()
    if policy.mode == "cron":
        return dg.AutomationCondition.on_cron(policy.cron)
    return None


class TrainingConfig(dg.Config):
    """Tuning budget and validation layout; the defaults keep `make run` short.

    Runs started by sensors and schedules take these defaults, so `build_training_assets`
    sets the budget's to the deployment's (TRAINING_PIPELINE_TUNING_TRIALS,
    TRAINING_PIPELINE_TUNING_SECONDS and TRAINING_PIPELINE_TUNING_THREADS, read once with
    the other settings).  ``threads`` unset means every core this process may use.  Trials
    first train on a ``1/reduction_factor**k`` sample of each fold and only the best
    ``1/reduction_factor`` go on to a larger one; the smallest sample keeps at least
    ``min_rung_rows`` rows.
    """

    n_trials: int = ModelDefaults.tuning_trials
    timeout_s: float = ModelDefaults.tuning_seconds
    threads: int | None = ModelDefaults.tuning_threads
    seed: int = 0
    n_folds: int = 3
    valid_snapshots: int = 2
    holdout_snapshots: int = 2
    families: list[str] = list(CHURN.families or ())
    reduction_factor: int = 3
    min_rung_rows: int = 2_000


@dataclasses.dataclass(frozen=True)
class Candidate:
    """What the validation and deployment steps need to find the new model again."""

    version: str
    dataset: TrainingSet
    holdout_snapshots: int
    threshold: float
    train_rows: int


def export_training_dataset(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, model_store: ModelStoreResource
) -> dg.Output[TrainingSet]:
    with warehouse.connect(read_only=True) as con:
        dataset = export_training_set(con, CHURN, Path(model_store.datasets_dir))
    return dg.Output(
        dataset,
        metadata={
            "dagster/row_count": dataset.rows,
            "path": dg.MetadataValue.path(dataset.path),
            "fingerprint": dataset.fingerprint,
            "snapshots": dataset.snapshots,
            "first_snapshot": dataset.first_snapshot,
            "last_snapshot": dataset.last_snapshot,
            "churn_rate": round(dataset.label_mean, 4),
            "ingestion_batches": len(dataset.batches),
        },
    )


def train_candidate_model(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    model_store: ModelStoreResource,
    training_dataset: TrainingSet,
) -> dg.Output[Candidate]:
    frame = load_training_set(training_dataset)
    tuning_config = TuningConfig(
        n_trials=config.n_trials,
        timeout_s=config.timeout_s,
        seed=config.seed,
        n_folds=config.n_folds,
        valid_snapshots=config.valid_snapshots,
        families=tuple(config.families),
        storage_url=model_store.optuna_storage_url,
        study_name=f"churn-{context.run_id}",
        n_threads=config.threads or default_threads(),
        reduction_factor=config.reduction_factor,
        min_rung_rows=config.min_rung_rows,
    )
    trained = train_candidate(frame, CHURN, tuning_config, config.holdout_snapshots)
    tuning = trained.tuning
    version = ModelRegistry(Path(model_store.models_dir)).register(
        trained.model,
        family=tuning.family,
        params=tuning.params,
        metrics=trained.metrics.to_dict() | {"cv_" + tuning.metric: tuning.cv_score},
        problem=CHURN,
        data_fingerprint=training_dataset.fingerprint,
        trained_on=list(training_dataset.batches),
        extra_files={
            "trial_history.html": optimization_history_html(tuning.study).encode(),
            "training_set.json": training_dataset.manifest_path.read_bytes(),
        },
    )
    return dg.Output(
        Candidate(
            version.version,
            training_dataset,
            config.holdout_snapshots,
            trained.threshold,
            trained.train_rows,
        ),
        metadata={
            "version": version.version,
            "model_family": tuning.family,
            "best_params": tuning.params,
            f"cv_{tuning.metric}": round(tuning.cv_score, 4),
            "cv_fold_scores": [round(s, 4) for s in tuning.fold_scores],
            "trials_completed": tuning.n_trials_completed,
            "trials_pruned": tuning.n_pruned,
            "training_time_s": round(tuning.duration_s, 1),
            "tuning_threads": tuning.n_threads,
            "sample_fractions": [round(f, 4) for f in tuning.rung_fractions],
            "cv_sample_fraction": round(tuning.sample_fraction, 4),
            "threshold": round(trained.threshold, 4),
            "train_rows": trained.train_rows,
            "holdout_rows": trained.holdout_rows,
            "trial_history": dg.MetadataValue.path(str(version.directory / "trial_history.html")),
            # TRAINING_PIPELINE_OPTUNA_STORAGE may hold a password.
            "optuna_study": f"{tuning.study_name} in {password_masked(tuning.storage_url)}",
        },
    )


def build_training_assets(
    policy: RetrainingPolicy, defaults: ModelDefaults
) -> list[dg.AssetsDefinition]:
    """The training set's export and the candidate, triggered by ``policy``, with the
    deployment's tuning budget as the defaults of every run's config."""

    class DeploymentTrainingConfig(TrainingConfig):
        n_trials: int = defaults.tuning_trials
        timeout_s: float = defaults.tuning_seconds
        threads: int | None = defaults.tuning_threads

    @dg.asset(
        group_name=GROUP,
        owners=OWNERS,
        kinds={"duckdb", "parquet"},
        pool=WAREHOUSE_POOL,
        deps=[CUSTOMER_SNAPSHOTS],
        automation_condition=_training_trigger(policy),
        description="The labelled weekly customer snapshots, exported from the warehouse to an "
        "immutable Parquet file named by its sha256, with the ingestion batches behind it.",
    )
    def training_dataset(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        model_store: ModelStoreResource,
    ) -> dg.Output[TrainingSet]:
        return export_training_dataset(context, warehouse, model_store)

    @dg.asset(
        group_name=GROUP,
        owners=OWNERS,
        kinds={"scikitlearn", "optuna"},
        pool=TRAINING_POOL,
        automation_condition=dg.AutomationCondition.eager(),
        description="A scikit-learn pipeline (imputation, encoding, estimator) whose family and "
        "hyperparameters Optuna chose on time-respecting CV; registered, not yet promoted.",
    )
    def churn_model_candidate(
        context: dg.AssetExecutionContext,
        config: DeploymentTrainingConfig,
        model_store: ModelStoreResource,
        training_dataset: TrainingSet,
    ) -> dg.Output[Candidate]:
        return train_candidate_model(context, config, model_store, training_dataset)

    return [training_dataset, churn_model_candidate]
