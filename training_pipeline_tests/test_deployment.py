"""Deployment: promote, load back, smoke-test, and roll back whatever fails."""

from __future__ import annotations

from pathlib import Path

import pytest
from fitted_models import broken, canary_rows, fitted, flip_a_byte, register
from sklearn.base import clone

from training_pipeline.ml.artifacts import ModelIntegrityError
from training_pipeline.ml.deployment import SmokeResult, deploy, smoke_test
from training_pipeline.ml.registry import AUTOMATIC_ROLLBACK, Aliases, ModelRegistry
from training_pipeline_tests.churn_model import CHURN


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "models")


@pytest.fixture
def champion(registry: ModelRegistry) -> str:
    """A healthy model already in production."""
    version = register(registry, fitted()).version
    registry.promote(version)
    return version


def test_smoke_test_passes_a_healthy_model():
    result = smoke_test(fitted("hist_gradient_boosting"), canary_rows(), CHURN)

    assert result == SmokeResult(passed=True, rows=25, reasons=())


def test_smoke_test_fails_a_model_whose_probabilities_are_all_identical():
    result = smoke_test(broken("constant"), canary_rows(), CHURN)

    assert not result.passed
    assert "all 25 probabilities are identical" in result.reasons[0]


def test_smoke_test_fails_a_model_that_predicts_nan():
    result = smoke_test(broken("nan"), canary_rows(), CHURN)

    assert not result.passed
    assert result.reasons == ("25 of 25 probabilities are not finite",)


def test_smoke_test_reports_what_predict_proba_raised():
    unfitted = clone(fitted())

    result = smoke_test(unfitted, canary_rows(), CHURN)

    assert not result.passed
    assert result.reasons[0].startswith("predict_proba raised NotFittedError")


def test_smoke_test_fails_when_canary_rows_lack_feature_columns():
    result = smoke_test(fitted(), canary_rows().drop(columns=["segment"]), CHURN)

    assert not result.passed
    assert "['segment']" in result.reasons[0]


def test_smoke_test_needs_more_than_one_canary_row_to_judge_spread():
    result = smoke_test(fitted(), canary_rows().head(1), CHURN)

    assert not result.passed
    assert "at least 2 canary rows" in result.reasons[0]


def test_deploy_promotes_a_model_that_passes_its_smoke_test(registry, champion):
    challenger = register(registry, fitted("random_forest"), family="random_forest").version

    outcome = deploy(registry, challenger, canary_rows(), CHURN)

    assert outcome.deployed and not outcome.rolled_back
    assert outcome.production == challenger
    assert registry.aliases() == Aliases(challenger, champion)


@pytest.mark.parametrize("kind", ["nan", "constant"])
def test_deploying_a_broken_model_rolls_back_to_the_previous_production(registry, champion, kind):
    before = registry.aliases()
    bad = register(registry, broken(kind)).version

    outcome = deploy(registry, bad, canary_rows(), CHURN)

    assert outcome.rolled_back and not outcome.deployed
    assert outcome.production == champion
    assert outcome.reasons and outcome.reasons == outcome.smoke.reasons
    assert registry.aliases() == before
    promoted, restored = registry.history()[-2:]
    assert promoted.after.production == bad
    assert (restored.action, restored.reason) == ("rollback", AUTOMATIC_ROLLBACK)


def test_deploying_a_broken_first_model_leaves_no_production(registry):
    bad = register(registry, broken("nan")).version

    outcome = deploy(registry, bad, canary_rows(), CHURN)

    assert outcome.rolled_back and outcome.production is None
    assert registry.aliases() == Aliases(None, None)


def test_a_broken_model_is_withdrawn_when_the_previous_model_no_longer_loads(registry, champion):
    bad = register(registry, broken("constant")).version
    flip_a_byte(registry.get(champion).artifact_path)

    outcome = deploy(registry, bad, canary_rows(), CHURN)

    assert outcome.withdrawn and not outcome.rolled_back
    assert outcome.production is None
    assert registry.aliases().production is None
    assert any("sha256" in reason for reason in outcome.reasons)


def test_a_crashing_smoke_test_still_restores_production_before_the_error_surfaces(
    registry, champion
):
    challenger = register(registry, fitted("random_forest"), family="random_forest").version

    def crash(model: object, canary: object, spec: object) -> SmokeResult:
        raise RuntimeError("canary store unreachable")

    with pytest.raises(RuntimeError, match="canary store unreachable"):
        deploy(registry, challenger, canary_rows(), CHURN, smoke=crash)

    assert registry.aliases().production == champion


def test_deploying_a_corrupted_artifact_is_refused_before_production_moves(registry, champion):
    challenger = register(registry, fitted("random_forest"), family="random_forest")
    flip_a_byte(challenger.artifact_path)

    with pytest.raises(ModelIntegrityError):
        deploy(registry, challenger.version, canary_rows(), CHURN)

    assert registry.aliases() == Aliases(champion, None)


def test_a_model_that_fails_to_load_back_after_promotion_is_rolled_back(
    registry, champion, monkeypatch
):
    challenger = register(registry, fitted("random_forest"), family="random_forest")
    promote = registry.promote

    def promote_then_corrupt(version: str, **kwargs: object):
        change = promote(version, **kwargs)
        flip_a_byte(challenger.artifact_path)  # the disk goes bad between the two steps
        return change

    monkeypatch.setattr(registry, "promote", promote_then_corrupt)
    outcome = deploy(registry, challenger.version, canary_rows(), CHURN)

    assert outcome.rolled_back and outcome.smoke is None
    assert outcome.reasons[0].startswith("loading it back failed: model version")
    assert registry.aliases() == Aliases(champion, None)
