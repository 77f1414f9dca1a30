"""What the validation and production assets show: the challenger-champion pair on the
same holdout, the paired interval, the production model's numbers, family, params,
training-set hash, links and model card (issue 11's screenshot-free check)."""

from __future__ import annotations

import dagster as dg
import pytest

from training_pipeline.ml.registry import ModelRegistry
from training_pipeline_tests.churn_model import NAME, key

pytestmark = pytest.mark.integration  # reads the churn world, trained by its assets in process

FLOAT, TEXT, PATH, URL, MD, JSON, INT = (
    dg.FloatMetadataValue,
    dg.TextMetadataValue,
    dg.PathMetadataValue,
    dg.UrlMetadataValue,
    dg.MarkdownMetadataValue,
    dg.JsonMetadataValue,
    dg.IntMetadataValue,
)


def latest_metadata(instance: dg.DagsterInstance, part: str) -> dict:
    event = instance.get_latest_materialization_event(key(part))
    assert event is not None, f"{part} was not materialized"
    return event.asset_materialization.metadata


def check_metadata(result: dg.ExecuteInProcessResult) -> dict:
    (check,) = result.get_asset_check_evaluations()
    return check.metadata


@pytest.fixture(scope="module")
def two_runs(churn_world):
    """A first model, then a retrain on more snapshots (new data) beside it (churn_world.py)."""
    return churn_world.settings, churn_world.instance, list(churn_world.results)


def test_the_production_asset_carries_metrics_family_params_hash_links_and_model_card(two_runs):
    settings, instance, results = two_runs
    assert all(r.success for r in results)
    registry = ModelRegistry.for_model(settings.models_dir, NAME)
    production = registry.production()
    shown = latest_metadata(instance, "production")
    assert shown["production"] == TEXT(production.version)
    for metric in ("roc_auc", "pr_auc", "log_loss", "brier", "f1", "threshold", "precision"):
        assert isinstance(shown[metric], FLOAT), metric
        assert shown[metric].value == pytest.approx(production.metrics[metric])
    assert shown["family"] == TEXT(production.family)
    assert isinstance(shown["params"], JSON) and shown["params"].data
    assert shown["training_set_sha256"] == TEXT(production.data_fingerprint)
    for link in ("report", "trial_history", "model_card_file"):
        assert isinstance(shown[link], PATH), link
    for link in ("report_url", "trial_history_url", "model_card_url"):
        assert isinstance(shown[link], URL) and shown[link].url.startswith("file:///"), link
    assert shown["report_url"].url.endswith(f"/{production.version}/report.html")
    assert isinstance(shown["model_card"], MD)
    assert f"model `{production.version}`" in shown["model_card"].value
    assert isinstance(shown["delta_roc_auc_low"], FLOAT)
    assert shown["vs_champion"].value.startswith("ROC AUC ")


def test_the_validation_asset_and_its_check_show_the_pair_on_the_same_holdout(two_runs):
    _, instance, results = two_runs
    shown = latest_metadata(instance, "validation")
    for name in ("roc_auc", "precision", "recall", "threshold"):
        challenger, champion = shown[f"challenger_{name}"], shown[f"champion_{name}"]
        assert isinstance(challenger, FLOAT) and isinstance(champion, FLOAT)
        assert shown[f"delta_{name}"].value == pytest.approx(challenger.value - champion.value)
    low, high = shown["delta_roc_auc_low"].value, shown["delta_roc_auc_high"].value
    assert low <= shown["delta_roc_auc"].value <= high
    assert shown["interval_verdict"].value in ("better", "worse", "within noise")
    assert isinstance(shown["holdout_rows"], INT) and shown["holdout_rows"].value > 100
    assert shown["holdout"].value.startswith(f"{shown['holdout_rows'].value} rows of snapshot")
    assert (
        isinstance(shown["summary"], MD) and "Paired bootstrap: ROC AUC" in shown["summary"].value
    )
    assert isinstance(shown["report_url"], URL) and isinstance(shown["model_card"], PATH)
    check = check_metadata(results[1])
    assert check["champion"] == shown["champion"]
    assert "new data" in check["replacement_reason"].value
    assert {"challenger_roc_auc", "champion_roc_auc", "delta_roc_auc_low"} <= set(check)


def test_the_first_validation_has_no_champion_pair(two_runs):
    _, _, results = two_runs
    check = check_metadata(results[0])
    assert check["champion"].value == "(none)"
    assert "challenger_roc_auc" in check and "champion_roc_auc" not in check
