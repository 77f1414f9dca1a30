"""A declared model's features to a tuned candidate: its training set and candidate."""

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from training_pipeline.assets.model_freshness import (
    SPEC_FILE,
    candidate_condition,
    data_version,
    spec_record,
    unchanged_reason,
)
from training_pipeline.assets.model_names import OWNERS, DeclaredModel
from training_pipeline.masking import password_masked
from training_pipeline.ml.datasets import TrainingSet, export_training_set, load_training_set
from training_pipeline.ml.problem import resolve_roles
from training_pipeline.resources import WAREHOUSE_POOL, ModelStoreResource, WarehouseResource

# Tuning and training (optuna, scikit-learn, pandas) are imported in the step that trains:
# loading the definitions (every UI reload, sensor tick, run start) need not.


def training_trigger(model: DeclaredModel) -> dg.AutomationCondition | None:
    """on_new_data: every features refresh; cron: the policy's schedule; on_drift: none
    here, the drift sensor requests retraining."""
    retraining = model.spec.retraining
    if retraining.policy == "on_new_data":
        return dg.AutomationCondition.eager()
    if retraining.policy == "cron":
        return dg.AutomationCondition.on_cron(retraining.cron)
    return None


class TrainingConfig(dg.Config):
    """Tuning budget and validation layout of one run; the defaults are the declaration's.

    ``threads`` unset means every core this process may use.  Trials first train on a
    ``1/reduction_factor**k`` sample of each fold and only the best ``1/reduction_factor``
    go on to a larger one; the smallest sample keeps at least ``min_rung_rows`` rows.
    ``force`` trains even when the newest version saw the same training set and spec.
    """

    n_trials: int
    timeout_s: float
    threads: int | None
    seed: int
    n_folds: int
    valid_snapshots: int
    holdout_snapshots: int | None  # None: the declaration's fraction holdout
    families: list[str]
    reduction_factor: int
    min_rung_rows: int
    force: bool = False  # train even when the training set and spec are unchanged


def config_class(model: DeclaredModel) -> type[TrainingConfig]:
    """``TrainingConfig`` whose defaults are ``model``'s declared tuning."""
    tuning = model.spec.tuning
    defaults = {
        "n_trials": tuning.trials,
        "timeout_s": tuning.seconds,
        "threads": tuning.threads,
        "seed": tuning.seed,
        "n_folds": tuning.folds,
        "valid_snapshots": tuning.valid_periods,
        "holdout_snapshots": model.spec.holdout_periods,
        "families": list(model.problem.families or ()),
        "reduction_factor": tuning.halving_factor,
        "min_rung_rows": tuning.min_rung_rows,
    }
    namespace = {"__annotations__": dict(TrainingConfig.__annotations__), "force": False}
    namespace |= defaults
    return type(f"{model.name}_training_config", (TrainingConfig,), namespace)


@dataclasses.dataclass(frozen=True)
class Candidate:
    """What the validation and deployment steps need to find the new model again."""

    version: str
    dataset: TrainingSet
    holdout_snapshots: int | None
    threshold: float | None  # binary only
    train_rows: int


def export(
    model: DeclaredModel, warehouse: WarehouseResource, store: ModelStoreResource
) -> dg.Output[TrainingSet]:
    with warehouse.connect(read_only=True) as con:
        dataset = export_training_set(con, model.problem, model.datasets_dir(store))
    return dg.Output(
        dataset,
        data_version=data_version(dataset.fingerprint),
        metadata={
            "dagster/row_count": dataset.rows,
            "path": dg.MetadataValue.path(dataset.path),
            "fingerprint": dataset.fingerprint,
            "snapshots": dataset.snapshots,
            "first_snapshot": dataset.first_snapshot,
            "last_snapshot": dataset.last_snapshot,
            "label_mean": round(dataset.label_mean, 4),
            "ingestion_batches": len(dataset.batches),
        },
    )


def train(
    context: dg.AssetExecutionContext,
    model: DeclaredModel,
    config: TrainingConfig,
    store: ModelStoreResource,
    dataset: TrainingSet,
) -> dg.Output[Candidate]:
    from training_pipeline.ml.halving import default_threads
    from training_pipeline.ml.reproduce import TRAINING_RUN_FILE, TRAINING_SET_FILE, TrainingRun
    from training_pipeline.ml.tuning import TuningConfig, optimization_history_html
    from training_pipeline.ml.workflow import train_candidate

    tuning_config = TuningConfig(
        n_trials=config.n_trials,
        timeout_s=config.timeout_s,
        seed=config.seed,
        n_folds=config.n_folds,
        valid_snapshots=config.valid_snapshots,
        families=tuple(config.families),
        metric=model.problem.primary_metric,
        storage_url=store.optuna_storage_url,
        study_name=f"{model.name}-{context.run.run_id}",
        n_threads=config.threads or default_threads(),
        reduction_factor=config.reduction_factor,
        min_rung_rows=config.min_rung_rows,
        n_workers=store.tuning_workers,
    )
    frame = load_training_set(dataset)
    problem, inferred = resolve_roles(model.problem, frame)
    context.log.info(f"feature roles inferred from the training set's types: {inferred}")
    trained = train_candidate(frame, problem, tuning_config, config.holdout_snapshots)
    tuning = trained.tuning
    run = TrainingRun(config.holdout_snapshots, tuning_config.n_threads, config.seed)
    registry = model.registry(store)
    version = registry.register(
        trained.model,
        family=tuning.family,
        params=tuning.params,
        metrics=trained.metrics.to_dict() | {"cv_" + tuning.metric: tuning.cv_score},
        problem=problem,
        data_fingerprint=dataset.fingerprint,
        trained_on=list(dataset.batches),
        extra_files={
            "trial_history.html": optimization_history_html(tuning.study).encode(),
            "training_set.json": dataset.manifest_path.read_bytes(),
            # The rows themselves, so `training-pipeline reproduce` can rebuild the version
            # after the datasets folder is cleaned; its sha256 is the data fingerprint.
            TRAINING_SET_FILE: Path(dataset.path),
            TRAINING_RUN_FILE: run.to_bytes(),
            SPEC_FILE: spec_record(model.spec),
        },
    )
    candidate = Candidate(
        version.version,
        dataset,
        config.holdout_snapshots,
        trained.threshold,
        trained.train_rows,
    )
    return dg.Output(
        candidate,
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
            "tuning_workers": tuning_config.n_workers,
            "sample_fractions": [round(f, 4) for f in tuning.rung_fractions],
            "cv_sample_fraction": round(tuning.sample_fraction, 4),
            **({} if trained.threshold is None else {"threshold": round(trained.threshold, 4)}),
            "inferred_roles": inferred.to_dict(),
            "train_rows": trained.train_rows,
            "holdout_rows": trained.holdout_rows,
            "trial_history": dg.MetadataValue.path(
                str(registry.file_location(version.version, "trial_history.html"))
            ),
            "spec_hash": model.spec.spec_hash,
            # TRAINING_PIPELINE_OPTUNA_STORAGE may hold a password.
            "optuna_study": f"{tuning.study_name} in {password_masked(tuning.storage_url)}",
        },
    )


NO_DATA = "no_labelled_rows"
"""Observation metadata of a candidate that waited for its first labelled rows."""


def train_unless_unchanged(
    context: dg.AssetExecutionContext,
    model: DeclaredModel,
    config: TrainingConfig,
    store: ModelStoreResource,
    dataset: TrainingSet,
) -> Iterator[dg.Output[Candidate] | dg.AssetObservation]:
    registry = model.registry(store)
    reason = None
    if dataset.rows == 0:
        # A model may be declared before its data arrives: it waits, visibly, and the other
        # models of the run still train.  Forcing cannot train on nothing either.
        reason = (
            f"{model.spec.features} has no labelled rows yet: nothing to train; the model "
            "trains on the first run that finds some"
        )
    elif not config.force:
        reason = unchanged_reason(registry, dataset.fingerprint, model.spec.spec_hash)
    if reason is None:
        yield train(context, model, config, store, dataset)
        return
    context.log.info(reason)
    no_data = {NO_DATA: True} if dataset.rows == 0 else {}
    yield dg.AssetObservation(asset_key=model.candidate, metadata={"skipped": reason, **no_data})


def training_assets(model: DeclaredModel) -> list[dg.AssetsDefinition]:
    """The training set's export and the candidate tuned on it."""
    Config = config_class(model)
    spec = model.spec

    @dg.asset(
        key=model.training_set,
        group_name=model.name,
        owners=OWNERS,
        kinds={"duckdb", "parquet"},
        pool=WAREHOUSE_POOL,
        deps=[model.features_key],
        automation_condition=training_trigger(model),
        description=f"The labelled rows of {spec.features}, exported from the warehouse to an "
        "immutable Parquet file named by its sha256, with the ingestion batches behind it.",
    )
    def training_set(
        warehouse: WarehouseResource, model_store: ModelStoreResource
    ) -> dg.Output[TrainingSet]:
        return export(model, warehouse, model_store)

    @dg.asset(
        key=model.candidate,
        group_name=model.name,
        owners=OWNERS,
        kinds={"scikitlearn", "optuna"},
        pool=spec.pool,
        ins={"dataset": dg.AssetIn(model.training_set)},
        code_version=spec.spec_hash,
        output_required=False,
        automation_condition=candidate_condition(),
        description="A scikit-learn pipeline (imputation, encoding, estimator) whose family and "
        "hyperparameters Optuna chose on time-respecting CV; registered, not yet promoted. "
        "Skipped, with the reason recorded, when the newest version saw the same training set "
        "and declaration.",
    )
    def candidate(
        context: dg.AssetExecutionContext,
        config: Config,  # type: ignore[valid-type]
        model_store: ModelStoreResource,
        dataset: TrainingSet,
    ) -> Iterator[dg.Output[Candidate] | dg.AssetObservation]:
        yield from train_unless_unchanged(context, model, config, model_store, dataset)

    return [training_set, candidate]
