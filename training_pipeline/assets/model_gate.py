"""A declared model's gate: challenger against champion on the same holdout, with a
report and a model card per version."""

import dagster as dg

from training_pipeline.assets.model_evidence import (
    MODEL_CARD,
    REPORT,
    file_links,
    interval_metadata,
    pair_metadata,
)
from training_pipeline.assets.model_names import OWNERS, DeclaredModel
from training_pipeline.assets.model_training import Candidate
from training_pipeline.assets.production_guard import verified_production
from training_pipeline.ml.problem import GatePolicy
from training_pipeline.resources import AlertsResource, ModelStoreResource

# The comparison and its reports (pandas, scikit-learn, evidently) are imported in the
# step that validates: loading the definitions need not.

GATE_CHECK = "passes_gate"
TRIGGER_TAG = "training_pipeline/trigger"  # set by the sensors on the runs they launch


class GateConfig(dg.Config):
    """A challenger is promoted only when its gate metric is at least ``floor`` (higher is
    better) or at most ``ceiling`` (lower is better), and, at the worst end of the
    ``confidence`` interval of ``resamples`` paired resamples, no worse than the
    champion's by more than ``tolerance``; the defaults are the declaration's ``gate``."""

    floor: float | None
    ceiling: float | None
    tolerance: float
    confidence: float
    resamples: int


def gate_config_class(model: DeclaredModel) -> type[GateConfig]:
    policy = model.problem.gate
    namespace = {
        "__annotations__": dict(GateConfig.__annotations__),
        "floor": policy.floor,
        "ceiling": policy.ceiling,
        "tolerance": policy.tolerance,
        "confidence": policy.confidence,
        "resamples": policy.resamples,
    }
    return type(f"{model.name}_gate_config", (GateConfig,), namespace)


def policy_of(model: DeclaredModel, config: GateConfig) -> GatePolicy:
    """The declared gate with this run's bounds; a bound against the metric's direction
    fails the step naming it."""
    try:
        return GatePolicy(
            model.problem.gate.metric,
            config.floor,
            config.ceiling,
            config.tolerance,
            config.confidence,
            config.resamples,
        )
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
    from training_pipeline.ml.comparison import replacement_reason
    from training_pipeline.ml.reports import comparison_markdown, model_card, validation_report_html
    from training_pipeline.ml.workflow import compare, holdout_of, stored_threshold

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
    replacement = None
    if champion_version is not None:
        replacement = replacement_reason(
            candidate.dataset.fingerprint,
            champion_version.data_fingerprint,
            context.run.tags.get(TRIGGER_TAG),
        )
    result = compare(
        registry.load(candidate.version),
        candidate.threshold,
        champion,
        champion_threshold,
        holdout,
        problem,
        policy,
        replacement,
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
        holdout,
        problem,
        result.challenger_scores,
        result.champion_scores,
        summary,
        candidate.threshold,
        champion_threshold,
    )
    registry.attach(candidate.version, {REPORT: report.encode(), MODEL_CARD: card.encode()})
    decision = result.decision
    interval = None if decision.interval is None else decision.interval.to_dict()
    gate_metric = policy.metric
    return dg.MaterializeResult(
        metadata={
            "version": candidate.version,
            "champion": champion_name or "(none)",
            "holdout": holdout_text(holdout, problem.time_column),
            "holdout_rows": len(holdout),
            "summary": dg.MetadataValue.md(summary),
            **pair_metadata(result.challenger, result.champion),
            **interval_metadata(interval),
            **file_links(registry, candidate.version),
            **guarded,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=GATE_CHECK,
                passed=decision.passed,
                metadata={
                    "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in decision.reasons)),
                    "champion": champion_name or "(none)",
                    "holdout_rows": len(holdout),
                    "replacement_reason": replacement or "(none)",
                    **{
                        key: value
                        for key, value in pair_metadata(result.challenger, result.champion).items()
                        if key.endswith(f"_{gate_metric}")
                    },
                    **interval_metadata(interval),
                },
            )
        ],
    )


def holdout_text(holdout, time_column: str | None) -> str:
    """Which rows the pair was measured on, for people."""
    periods = holdout_periods(holdout, time_column)
    if not periods:
        return f"{len(holdout)} rows held out at random (no time column)"
    return f"{len(holdout)} rows of {time_column} {', '.join(periods)}"


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
                description=f"Challenger {policy.metric} is {bound}; on the same holdout "
                f"rows the {policy.confidence:.0%} paired bootstrap interval of its difference "
                f"to the champion's allows it to be worse by at most {policy.tolerance}, and "
                "a challenger not better beyond noise needs new data or drift to pass.",
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
