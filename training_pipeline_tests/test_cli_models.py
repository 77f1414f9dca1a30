"""`training-pipeline status` and `training-pipeline rollback` against a real registry."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest
from fitted_models import FAMILIES, fitted, flip_a_byte, register

from training_pipeline.cli import main
from training_pipeline.components.models import ModelChoiceError, choose_model
from training_pipeline.console import log_path_in
from training_pipeline.ml.registry import Aliases, LegacyLayoutError, ModelRegistry
from training_pipeline.settings import Settings

pytestmark = pytest.mark.integration  # the CLI on a real registry and Dagster home

TOP_LEVEL_KEYS = {
    "schema_version",
    "registry",
    "production",
    "production_verified",
    "production_verification_error",
    "previous_production",
    "pinned",
    "total_versions",
    "versions",
    "recent_changes",
}
PRODUCTION_KEYS = {
    "version",
    "family",
    "created_at",
    "metrics",
    "trained_on",
    "data_fingerprint",
    "code_version",
    "sha256",
    "gate",
    "gate_recorded_at",
    "promoted_at",
    "promoted_by",
    "promotion_reason",
    "rejected",
}
VERSION_KEYS = {
    *("version", "family", "created_at", "metrics", "gate", "gate_recorded_at", "aliases"),
    "rejected",
}
CHANGE_KEYS = {"at", "action", "reason", "actor", "production_before", "production_after"}


@pytest.fixture
def registry(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelRegistry:
    """The registry the CLI finds through TRAINING_PIPELINE_DATA_DIR and the one model the
    project (examples/) declares; alias changes are reported to a Dagster home of its own."""
    (tmp_path / "dagster_home").mkdir()
    (tmp_path / "dagster_home" / "dagster.yaml").touch()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    return ModelRegistry.for_model(settings.data_dir / "models", "churn")


@pytest.fixture
def three_versions(registry: ModelRegistry) -> list[str]:
    """Three versions, all promoted in turn: the last is production, the second previous."""
    versions = [register(registry, fitted(f), family=f).version for f in FAMILIES]
    for version in versions:
        registry.promote(version, actor="ci")
    registry.record_gate(versions[-1], {"passed": True, "reasons": []})
    return versions


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``training-pipeline <command> --model churn <rest>``: the examples declare two models."""
    command, *rest = argv
    code = main([command, "--model", "churn", *rest])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_status_keeps_the_warnings_of_loading_the_declarations_out_of_the_terminal(
    capsys, settings, three_versions
):
    code, out, err = run_cli(capsys, "status")

    assert code == 0 and f"production: {three_versions[-1]}" in out
    assert "Warning" not in err
    # Dagster's notices about its own beta APIs, raised while the defs/ folder loads.
    assert "BetaWarning" in log_path_in(settings.data_dir).read_text()


def test_status_json_has_the_documented_keys(capsys, registry, three_versions):
    code, out, _ = run_cli(capsys, "status", "--json")

    assert code == 0
    status = json.loads(out)
    assert set(status) == TOP_LEVEL_KEYS
    assert status["schema_version"] == 1
    assert status["registry"] == str(registry.root)
    assert set(status["production"]) == PRODUCTION_KEYS
    assert all(set(entry) == VERSION_KEYS for entry in status["versions"])
    assert all(set(entry) == CHANGE_KEYS for entry in status["recent_changes"])


def test_status_json_describes_production_and_lists_versions_newest_first(capsys, three_versions):
    first, second, third = three_versions

    status = json.loads(run_cli(capsys, "status", "--json")[1])

    production = status["production"]
    assert production["version"] == third
    assert production["family"] == "random_forest"
    assert production["metrics"] == {"roc_auc": 0.8123, "pr_auc": 0.4567}
    assert production["trained_on"] == ["orders_2025-01-06.csv", "orders_2025-01-07.csv"]
    assert production["gate"] == {"passed": True, "reasons": []}
    assert (production["promoted_by"], production["promotion_reason"]) == ("ci", "promoted")
    assert status["previous_production"] == second
    assert [v["version"] for v in status["versions"]] == [third, second, first]
    assert [v["aliases"] for v in status["versions"]] == [
        ["production"],
        ["previous_production"],
        [],
    ]
    assert status["recent_changes"][0]["production_after"] == third


def test_status_last_limits_the_versions_listed(capsys, three_versions):
    status = json.loads(run_cli(capsys, "status", "--json", "--last", "1")[1])

    assert status["total_versions"] == 3
    assert [v["version"] for v in status["versions"]] == [three_versions[-1]]


def test_status_json_of_an_empty_registry_has_no_production(capsys, registry):
    code, out, _ = run_cli(capsys, "status", "--json")

    assert code == 0
    status = json.loads(out)
    assert (status["production"], status["versions"], status["total_versions"]) == (None, [], 0)
    assert not registry.root.exists(), "status must not create the registry"


def test_status_prints_production_metrics_batches_and_recent_versions(capsys, three_versions):
    code, out, _ = run_cli(capsys, "status")

    assert code == 0
    assert f"production: {three_versions[-1]} (random_forest)" in out
    assert "roc_auc 0.8123, pr_auc 0.4567" in out
    assert "2 batch(es): orders_2025-01-06.csv, orders_2025-01-07.csv" in out
    assert "gate:       passed" in out
    assert f"previous production: {three_versions[1]}" in out
    assert "last 3 of 3 version(s):" in out


def test_rollback_restores_the_previous_version_and_says_so(capsys, registry, three_versions):
    first, second, third = three_versions

    code, out, _ = run_cli(capsys, "rollback", "--reason", "drift alarm")

    assert code == 0
    assert f"production is now {second} (was {third})" in out
    assert "'drift alarm'" in out
    assert registry.aliases() == Aliases(second, first)
    assert registry.history()[-1].reason == "drift alarm"


def test_rollback_to_a_named_version(capsys, registry, three_versions):
    first, _, third = three_versions

    code, out, _ = run_cli(capsys, "rollback", "--to", first)

    assert code == 0
    assert f"production is now {first} (was {third})" in out
    assert registry.aliases().production == first


def test_rollback_without_production_exits_non_zero_with_a_message(capsys, registry):
    register(registry, fitted())

    code, out, err = run_cli(capsys, "rollback")

    assert code == 1
    assert out == ""
    assert "training-pipeline rollback: there is no production model to roll back" in err


def test_rollback_to_an_unknown_version_exits_non_zero(capsys, registry, three_versions):
    code, _, err = run_cli(capsys, "rollback", "--to", "v20000101T000000-000000000000")

    assert code == 1
    assert "unknown model version 'v20000101T000000-000000000000'" in err
    assert registry.aliases().production == three_versions[-1]


def test_rollback_refuses_a_corrupted_previous_version(capsys, registry, three_versions):
    flip_a_byte(registry.get(three_versions[1]).artifact_path)

    code, _, err = run_cli(capsys, "rollback")

    assert code == 1
    assert "corrupt or truncated" in err and "expected sha256" in err
    assert registry.aliases().production == three_versions[-1]


def test_a_registry_in_the_old_one_model_layout_is_refused_with_the_move_to_make(
    capsys, settings: Settings
):
    old = ModelRegistry(settings.models_dir)  # <data>/models/registry.json, as before
    version = register(old, fitted("random_forest"), family="random_forest").version
    before = sorted(p.name for p in settings.models_dir.iterdir())

    code, out, err = run_cli(capsys, "status")

    assert code == 1 and out == ""
    target = settings.models_dir / "churn"
    assert f"{settings.models_dir / 'registry.json'} is a registry in the old" in err
    assert "Nothing was moved" in err and f"mkdir -p {target} && mv " in err
    assert sorted(p.name for p in settings.models_dir.iterdir()) == before
    with pytest.raises(LegacyLayoutError):
        ModelRegistry.for_model(settings.models_dir, "churn")
    assert ModelRegistry(settings.models_dir).get(version).version == version


def test_the_model_choice_is_the_only_declared_model_or_an_error_listing_them():
    assert choose_model(["churn"]) == "churn"
    assert choose_model(["churn", "weather"], "weather") == "weather"
    with pytest.raises(ModelChoiceError, match=r"^several models: churn, weather; pass --model$"):
        choose_model(["churn", "weather"])
    with pytest.raises(ModelChoiceError, match="declares no model"):
        choose_model([])
    with pytest.raises(ModelChoiceError, match=r"no model named 'flights'; declared: churn"):
        choose_model(["churn"], "flights")


def alert_lines(settings: Settings) -> list[dict]:
    log = settings.data_dir / "alerts" / "alerts.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def production_observations(tmp_path: Path) -> list[dict]:
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        records = instance.fetch_observations(dg.AssetKey(["churn", "production"]), limit=10)
        return [
            {k: v.value for k, v in r.asset_observation.metadata.items()} for r in records.records
        ]


def test_rollback_with_pin_rejects_pins_shows_in_the_ui_and_alerts(
    capsys, registry, three_versions, settings, tmp_path
):
    _, second, third = three_versions

    code, out, _ = run_cli(capsys, "rollback", "--reason", "bad scores", "--pin")

    assert code == 0, out
    assert f"production is now {second} (was {third}); {third} is rejected" in out
    assert f"pinned: production stays {second}" in out
    assert registry.get(third).rejected.reason == "bad scores"
    assert registry.pinned().version == second
    events = production_observations(tmp_path)
    assert {e["alias_change"] for e in events} == {"rollback", "pin"}
    assert all(e["reason"] == "bad scores" and e["actor"] for e in events)
    kinds = [(a["kind"], a["model"], a["details"]["production"]) for a in alert_lines(settings)]
    assert kinds == [("operator_rollback", "churn", second), ("production_pinned", "churn", second)]
    assert alert_lines(settings)[0]["details"]["production_before"] == third


def test_status_says_production_is_pinned_and_which_version_was_rejected(
    capsys, registry, three_versions
):
    run_cli(capsys, "rollback", "--reason", "bad scores", "--pin")

    status = json.loads(run_cli(capsys, "status", "--json")[1])
    text = run_cli(capsys, "status")[1]

    assert status["pinned"]["version"] == three_versions[1]
    assert status["versions"][0]["rejected"]["reason"] == "bad scores"
    assert f"PINNED to {three_versions[1]}" in text and "REJECTED by" in text


def test_unpin_lets_automation_promote_again_and_is_alerted(
    capsys, registry, three_versions, settings, tmp_path
):
    assert run_cli(capsys, "pin", "--reason", "hold")[0] == 0

    code, out, _ = run_cli(capsys, "unpin", "--reason", "done")

    assert code == 0 and "unpinned" in out
    assert registry.pinned() is None
    assert [a["kind"] for a in alert_lines(settings)] == [
        "production_pinned",
        "production_unpinned",
    ]
    assert [e["alias_change"] for e in production_observations(tmp_path)] == ["unpin", "pin"]


def test_unpin_when_not_pinned_fails_clearly(capsys, registry, three_versions):
    code, _, err = run_cli(capsys, "unpin")

    assert code == 1 and "not pinned" in err
