"""A declared model's gate: challenger against champion on the same holdout, with a
report and a model card per version."""

import dagster as dg

from training_pipeline.assets.model_names import OWNERS, DeclaredModel
from training_pipeline.assets.model_training import Candidate
from training_pipeline.assets.production_guard import verified_production
from training_pipeline.ml.evaluation import GatePolicy
from training_pipeline.ml.reports import comparison_markdown, model_card, validation_report_html
from training_pipeline.ml.workflow import compare, holdout_metrics, holdout_of
from training_pipeline.resources import AlertsResource, ModelStoreResource

GATE_CHECK = "passes_gate"


class GateConfig(dg.Config):
    """A challenger is promoted only with AUC >= auc_floor and >= champion AUC - max_auc_drop;
    the defaults are the declaration's ``gate.floor`` and ``gate.tolerance``."""

    auc_floor: float
    max_auc_drop: float


def gate_config_class(model: DeclaredModel) -> type[GateConfig]:
    policy = model.ml.gate
    namespace = {
        "__annotations__": dict(GateConfig.__annotations__),
        "auc_floor": policy.auc_floor,
        "max_auc_drop": policy.max_auc_drop,
    }
    return type(f"{model.name}_gate_config", (GateConfig,), namespace)


def validate(
    context: dg.AssetExecutionContext,
    model: DeclaredModel,
    config: GateConfig,
    store: ModelStoreResource,
    alerts: AlertsResource,
    candidate: Candidate,
) -> dg.MaterializeResult:
    features = model.ml.features
    registry = model.registry(store)
    holdout = holdout_of(candidate.dataset, features, candidate.holdout_snapshots)
    guarded = verified_production(context, registry, alerts)
    champion_version = registry.production()
    champion = champion_threshold = None
    if champion_version is not None:
        champion = registry.load(champion_version.version)
        champion_threshold = holdout_metrics(champion_version.metrics).threshold
    result = compare(
        registry.load(candidate.version),
        candidate.threshold,
        champion,
        champion_threshold,
        holdout,
        features,
        GatePolicy(config.auc_floor, config.max_auc_drop),
    )
    champion_name = None if champion_version is None else champion_version.version
    summary = comparison_markdown(
        result.challenger, result.champion, result.decision, candidate.version, champion_name
    )
    registry.record_gate(candidate.version, result.decision.to_dict())
    card = model_card(
        version=candidate.version,
        family=registry.get(candidate.version).family,
        params=registry.metadata(candidate.version)["params"],
        spec=features,
        metrics=result.challenger,
        decision=result.decision,
        data={
            "train_rows": candidate.train_rows,
            "train_snapshots": f"{candidate.dataset.first_snapshot} onwards",
            "holdout_rows": len(holdout),
            "holdout_snapshots": sorted({str(d)[:10] for d in holdout[features.time_column]}),
            "fingerprint": candidate.dataset.fingerprint,
            "batch_count": len(candidate.dataset.batches),
        },
    )
    report = validation_report_html(
        holdout, features, result.challenger_scores, result.champion_scores, summary
    )
    paths = registry.attach(
        candidate.version, {"report.html": report.encode(), "model_card.md": card.encode()}
    )
    challenger, champion_metrics = result.challenger, result.champion
    return dg.MaterializeResult(
        metadata={
            "version": candidate.version,
            "champion": champion_name or "(none)",
            "summary": dg.MetadataValue.md(summary),
            "report": dg.MetadataValue.path(str(paths["report.html"])),
            "model_card": dg.MetadataValue.path(str(paths["model_card.md"])),
            **{m: round(getattr(challenger, m), 4) for m in model.spec.report_metrics},
            **guarded,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=GATE_CHECK,
                passed=result.decision.passed,
                metadata={
                    "reasons": dg.MetadataValue.md(
                        "\n".join(f"- {r}" for r in result.decision.reasons)
                    ),
                    "challenger_auc": round(challenger.roc_auc, 4),
                    "champion_auc": None
                    if champion_metrics is None
                    else round(champion_metrics.roc_auc, 4),
                },
            )
        ],
    )


def gate_asset(model: DeclaredModel) -> dg.AssetsDefinition:
    """The validation asset and its blocking check ``passes_gate``."""
    Config = gate_config_class(model)
    gate = model.spec.gate

    @dg.asset(
        key=model.validation,
        group_name=model.name,
        owners=OWNERS,
        kinds={"scikitlearn", "evidently"},
        ins={"candidate": dg.AssetIn(model.candidate)},
        automation_condition=dg.AutomationCondition.eager(),
        description="The candidate and the production model scored on the same holdout; the "
        f"blocking check `{GATE_CHECK}` decides whether deployment may run.",
        check_specs=[
            dg.AssetCheckSpec(
                GATE_CHECK,
                asset=model.validation,
                blocking=True,
                description=f"Challenger {model.spec.gate_metric} meets the floor {gate.floor} "
                f"and is not worse than the champion's by more than {gate.tolerance}.",
            )
        ],
    )
    def validation(
        context: dg.AssetExecutionContext,
        config: Config,  # type: ignore[valid-type]
        model_store: ModelStoreResource,
        alerts: AlertsResource,
        candidate: Candidate,
    ) -> dg.MaterializeResult:
        return validate(context, model, config, model_store, alerts, candidate)

    return validation
