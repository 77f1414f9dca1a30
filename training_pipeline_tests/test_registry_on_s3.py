"""The pipeline's registry on s3:// (``TRAINING_PIPELINE_REGISTRY_URL``), on moto: the
graph trains, gates and promotes into it, ``reproduce`` rebuilds from it, the CLI reads
and moves its aliases, and the server swaps when production moves there."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest
from fitted_models import fitted, register
from live_server import Load, running
from serving_models import record, servable
from synthetic_churn import churn_snapshots
from test_gate_in_the_graph import FAST, exported, graph_on

from training_pipeline.cli import main
from training_pipeline.cli_serve import build_server
from training_pipeline.environment import SettingsError
from training_pipeline.ml.reproduce import reproduce
from training_pipeline.registries import registry_of
from training_pipeline.resources import build_resources
from training_pipeline.serving.app import Limits
from training_pipeline.settings import Settings
from training_pipeline_tests.churn_model import NAME, step

pytestmark = pytest.mark.integration  # the CLI and the server on a registry in a local S3 server


@pytest.fixture
def s3_settings(s3_bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings of a fresh data directory whose registry is in a fresh bucket."""
    bucket, _ = s3_bucket
    monkeypatch.setenv("TRAINING_PIPELINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TRAINING_PIPELINE_REGISTRY_URL", f"s3://{bucket}/registry/")
    monkeypatch.delenv("TRAINING_PIPELINE_ALERT_WEBHOOK_URL", raising=False)
    (tmp_path / "dagster_home").mkdir()
    (tmp_path / "dagster_home" / "dagster.yaml").touch()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    return Settings.from_env()


@pytest.mark.parametrize(
    ("url", "problem"),
    [("/srv/models", "scheme is not s3"), ("s3:///models", "names no bucket")],
)
def test_a_registry_url_that_is_not_an_s3_bucket_is_refused_naming_it(url, problem, monkeypatch):
    monkeypatch.setenv("TRAINING_PIPELINE_REGISTRY_URL", url)
    with pytest.raises(SettingsError, match=f"TRAINING_PIPELINE_REGISTRY_URL.*{problem}"):
        Settings.from_env()


def test_an_s3_registry_without_aws_credentials_is_refused_at_load(monkeypatch):
    monkeypatch.setenv("TRAINING_PIPELINE_REGISTRY_URL", "s3://bucket/models")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    with pytest.raises(SettingsError, match="AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        Settings.from_env()


def test_unset_the_registry_stays_the_local_models_folder(settings: Settings):
    assert settings.registry_url is None
    assert registry_of(settings, NAME).root == settings.data_dir / "models" / NAME


@pytest.mark.slow
def test_the_graph_trains_gates_and_promotes_into_an_s3_registry_and_reproduce_rebuilds(
    s3_settings: Settings,
):
    frame = churn_snapshots(n_customers=400, n_snapshots=20, seed=3)
    result = dg.materialize(
        graph_on(exported(frame, s3_settings)),
        resources=build_resources(s3_settings),
        run_config=FAST,
    )
    assert result.success
    registry = registry_of(s3_settings, NAME)
    assert str(registry.root).startswith("s3://")
    production = registry.aliases().production
    assert production == registry.versions()[0].version
    registry.verify(production)
    assert registry.has_file(production, "report.html")
    assert not s3_settings.models_dir.exists(), "nothing of the registry is kept locally"
    shown = result.asset_materializations_for_node(step("production"))[-1].metadata
    assert shown["report_url"].url == registry.file_url(production, "report.html")
    assert shown["report_url"].url.startswith("s3://")
    assert f"model `{production}`" in shown["model_card"].value
    rebuilt = reproduce(registry, production)
    assert rebuilt.passed, rebuilt.text()
    assert str(rebuilt.training_set).startswith("s3://")


def test_the_cli_status_rollback_and_pin_work_on_an_s3_registry(s3_settings, capsys):
    registry = registry_of(s3_settings, NAME)
    families = ("logistic_regression", "random_forest")
    first, second = (register(registry, fitted(f), family=f).version for f in families)
    registry.promote(first)
    registry.promote(second)

    assert main(["rollback", "--model", NAME, "--reason", "test: worse"]) == 0
    assert main(["pin", "--model", NAME, "--reason", "test: hold"]) == 0
    capsys.readouterr()
    assert main(["status", "--model", NAME, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)

    assert status["registry"] == f"{s3_settings.registry_url}/{NAME}"
    assert status["production"]["version"] == first
    assert status["production_verified"] is True
    assert status["pinned"]["version"] == first
    assert registry_of(s3_settings, NAME).get(second).rejected is not None


def test_the_server_swaps_when_production_moves_on_an_s3_registry(s3_settings, tmp_path):
    registry = registry_of(s3_settings, NAME)
    first = servable(registry, "logistic_regression", scratch=tmp_path)
    second = servable(registry, "hist_gradient_boosting", scratch=tmp_path)
    registry.promote(first)
    server = build_server(s3_settings, [NAME], Limits(watch_interval_s=0.05))
    with running(server) as url, Load(f"{url}/v1/models/{NAME}/predict", record()) as load:
        load.wait_serving(first)
        registry.promote(second)
        load.wait_serving(second)
    assert load.failures == []
    assert set(load.versions) == {first, second}
