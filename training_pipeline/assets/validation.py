"""The gate: challenger against champion on the same holdout, with a report per version."""

from pathlib import Path

import dagster as dg

from training_pipeline.assets.churn_spec import CHURN
from training_pipeline.assets.production_guard import verified_production
from training_pipeline.assets.training import Candidate
from training_pipeline.ml.evaluation import GatePolicy
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.ml.reports import comparison_markdown, model_card, validation_report_html
from training_pipeline.ml.workflow import compare, holdout_of, stored_threshold
from training_pipeline.resources import AlertsResource, ModelStoreResource
from training_pipeline.settings import ModelDefaults

VALIDATION = dg.AssetKey("churn_model_validation")


class GateConfig(dg.Config):
    """A challenger is promoted only with AUC ≥ auc_floor and ≥ champion AUC − max_auc_drop.

    Runs started by sensors and schedules take these defaults, so `build_validation_asset`
    sets them to the deployment's (TRAINING_PIPELINE_GATE_AUC_FLOOR and
    TRAINING_PIPELINE_GATE_MAX_AUC_DROP, read once with the other settings).
    """

    auc_floor: float = ModelDefaults.gate_auc_floor
    max_auc_drop: float = ModelDefaults.gate_max_auc_drop


def validate_candidate(
    context: dg.AssetExecutionContext,
    config: GateConfig,
    model_store: ModelStoreResource,
    alerts: AlertsResource,
    churn_model_candidate: Candidate,
) -> dg.MaterializeResult:
    candidate = churn_model_candidate
    registry = ModelRegistry(Path(model_store.models_dir))
    holdout = holdout_of(candidate.dataset, CHURN, candidate.holdout_snapshots)
    guarded = verified_production(context, registry, alerts)
    champion_version = registry.production()
    champion = champion_threshold = None
    if champion_version is not None:
        champion = registry.load(champion_version.version)
        champion_threshold = stored_threshold(champion_version.metrics)
    result = compare(
        registry.load(candidate.version),
        candidate.threshold,
        champion,
        champion_threshold,
        holdout,
        CHURN,
        GatePolicy(CHURN.gate.metric, floor=config.auc_floor, tolerance=config.max_auc_drop),
    )
    champion_name = None if champion_version is None else champion_version.version
    summary = comparison_markdown(
        result.challenger, result.champion, result.decision, candidate.version, champion_name
    )
    registry.record_gate(candidate.version, result.decision.to_dict())
    version = registry.get(candidate.version)
    card = model_card(
        version=candidate.version,
        family=version.family,
        params=registry.metadata(candidate.version)["params"],
        spec=CHURN,
        metrics=result.challenger,
        decision=result.decision,
        data={
            "train_rows": candidate.train_rows,
            "train_snapshots": f"{candidate.dataset.first_snapshot} onwards",
            "holdout_rows": len(holdout),
            "holdout_snapshots": sorted({str(d)[:10] for d in holdout[CHURN.time_column]}),
            "fingerprint": candidate.dataset.fingerprint,
            "batch_count": len(candidate.dataset.batches),
        },
    )
    paths = registry.attach(
        candidate.version,
        {
            "report.html": validation_report_html(
                holdout, CHURN, result.challenger_scores, result.champion_scores, summary
            ).encode(),
            "model_card.md": card.encode(),
        },
    )
    challenger, champion_metrics = result.challenger, result.champion
    return dg.MaterializeResult(
        metadata={
            "version": candidate.version,
            "champion": champion_name or "(none)",
            "summary": dg.MetadataValue.md(summary),
            "report": dg.MetadataValue.path(str(paths["report.html"])),
            "model_card": dg.MetadataValue.path(str(paths["model_card.md"])),
            **{name: round(value, 4) for name, value in challenger.values.items()},
            **guarded,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="passes_gate",
                passed=result.decision.passed,
                metadata={
                    "reasons": dg.MetadataValue.md(
                        "\n".join(f"- {r}" for r in result.decision.reasons)
                    ),
                    "challenger_auc": round(result.decision.challenger_value, 4),
                    "champion_auc": None
                    if champion_metrics is None
                    else round(champion_metrics[CHURN.gate.metric], 4),
                },
            )
        ],
    )


def build_validation_asset(defaults: ModelDefaults) -> dg.AssetsDefinition:
    """The gate, with the deployment's floor and tolerance as every run's defaults."""

    class DeploymentGateConfig(GateConfig):
        auc_floor: float = defaults.gate_auc_floor
        max_auc_drop: float = defaults.gate_max_auc_drop

    @dg.asset(
        key=VALIDATION,
        group_name="validation",
        owners=["team:ml"],
        kinds={"scikitlearn", "evidently"},
        automation_condition=dg.AutomationCondition.eager(),
        description="The candidate and the production model scored on the same holdout; the "
        "blocking check `passes_gate` decides whether deployment may run.",
        check_specs=[
            dg.AssetCheckSpec(
                "passes_gate",
                asset=VALIDATION,
                blocking=True,
                description="Challenger AUC meets the floor and is not worse than the champion's "
                "by more than the tolerance.",
            )
        ],
    )
    def churn_model_validation(
        context: dg.AssetExecutionContext,
        config: DeploymentGateConfig,
        model_store: ModelStoreResource,
        alerts: AlertsResource,
        churn_model_candidate: Candidate,
    ) -> dg.MaterializeResult:
        return validate_candidate(context, config, model_store, alerts, churn_model_candidate)

    return churn_model_validation
