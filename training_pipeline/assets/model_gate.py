"""A declared model's gate: challenger against champion on the same holdout, with a
report and a model card per version."""

import dagster as dg

from training_pipeline.assets.model_names import OWNERS, DeclaredModel
from training_pipeline.assets.model_training import Candidate
from training_pipeline.assets.production_guard import verified_production
from training_pipeline.ml.evaluation import GatePolicy
from training_pipeline.ml.reports import comparison_markdown, model_card, validation_report_html
from training_pipeline.ml.workflow import compare, holdout_of, stored_threshold
from training_pipeline.resources import AlertsResource, ModelStoreResource

GATE_CHECK = "passes_gate"


class GateConfig(dg.Config):
    """A challenger is promoted only when its gate metric is at least ``floor`` (higher is
    better) or at most ``ceiling`` (lower is better), and no worse than the champion's by
    more than ``tolerance``; the defaults are the declaration's ``gate``."""

    floor: float | None
    ceiling: float | None
    tolerance: float


def gate_config_class(model: DeclaredModel) -> type[GateConfig]:
    policy = model.problem.gate
    namespace = {
        "__annotations__": dict(GateConfig.__annotations__),
        "floor": policy.floor,
        "ceiling": policy.ceiling,
        "tolerance": policy.tolerance,
    }
    return type(f"{model.name}_gate_config", (GateConfig,), namespace)


def policy_of(model: DeclaredModel, config: GateConfig) -> GatePolicy:
    """The declared gate with this run's bounds; a bound against the metric's direction
    fails the step naming it."""
    try:
        return GatePolicy(model.problem.gate.metric, config.floor, config.ceiling, config.tolerance)
    except ValueError as error:
        raise dg.Failure(description=f"model {model.name!r}: gate run config: {error}") from None


def validate(
    context: dg.AssetExecutionContext,
    model: DeclaredModel,
    config: GateConfig,
    store: ModelStoreResource,
    alerts: AlertsResource,
    candidate: Candidate,
) -> dg.MaterializeResult:
    registry = model.registry(store)
    problem = model.problem_of(registry, candidate.version)
    holdout = holdout_of(candidate.dataset, problem, candidate.holdout_snapshots)
    guarded = verified_production(context, registry, alerts)
    champion_version = registry.production()
    champion = champion_threshold = None
    if champion_version is not None:
        champion = registry.load(champion_version.version)
        champion_threshold = stored_threshold(champion_version.metrics)
    policy = policy_of(model, config)
    result = compare(
        registry.load(candidate.version),
        candidate.threshold,
        champion,
        champion_threshold,
        holdout,
        problem,
        policy,
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
        spec=problem,
        metrics=result.challenger,
        decision=result.decision,
        data={
            "train_rows": candidate.train_rows,
            "train_snapshots": f"{candidate.dataset.first_snapshot} onwards",
            "holdout_rows": len(holdout),
            "holdout_snapshots": holdout_periods(holdout, problem.time_column),
            "fingerprint": candidate.dataset.fingerprint,
            "batch_count": len(candidate.dataset.batches),
        },
    )
    report = validation_report_html(
        holdout, problem, result.challenger_scores, result.champion_scores, summary
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
            **{name: round(value, 4) for name, value in challenger.values.items()},
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
                    f"challenger_{policy.metric}": round(result.decision.challenger_value, 4),
                    f"champion_{policy.metric}": None
                    if champion_metrics is None
                    else round(champion_metrics[policy.metric], 4),
                },
            )
        ],
    )


def holdout_periods(holdout, time_column: str | None) -> list[str]:
    """The holdout's time values for the model card; none with a fraction holdout."""
    if time_column is None:
        return []
    return sorted({str(d)[:10] for d in holdout[time_column]})


def gate_asset(model: DeclaredModel) -> dg.AssetsDefinition:
    """The validation asset and its blocking check ``passes_gate``."""
    Config = gate_config_class(model)
    policy = model.problem.gate
    bound = (
        f"at least the floor {policy.floor}"
        if policy.floor is not None
        else (f"at most the ceiling {policy.ceiling}")
    )

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
                description=f"Challenger {policy.metric} is {bound} and not worse than the "
                f"champion's by more than {policy.tolerance}.",
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
