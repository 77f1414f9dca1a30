"""A production change reaches the server without a failed request, and a version that
is not servable never does: the old one keeps serving and an alert is raised."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from fitted_models import broken, flip_a_byte
from live_server import Load, running
from serving_models import NAME, churn_registry, record, servable

from training_pipeline.alerts import alert_log_path
from training_pipeline.cli_serve import build_server
from training_pipeline.ml.registry import ModelRegistry
from training_pipeline.ml.registry_store import update_index
from training_pipeline.serving.app import Limits
from training_pipeline.settings import Settings

pytestmark = pytest.mark.integration  # a live server under load while production changes

FAST = Limits(watch_interval_s=0.05)


@pytest.fixture(autouse=True)
def _no_webhook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRAINING_PIPELINE_ALERT_WEBHOOK_URL", raising=False)


def test_promotions_and_rollbacks_even_while_pinned_swap_under_load_without_a_failed_request(
    settings: Settings,
):
    registry = churn_registry(settings.models_dir)
    first = servable(registry, "logistic_regression")
    second = servable(registry, "hist_gradient_boosting")
    registry.promote(first)
    with (
        running(build_server(settings, [NAME], FAST)) as url,
        Load(f"{url}/v1/models/{NAME}/predict", record()) as load,
    ):
        load.wait_serving(first)
        registry.promote(second)
        load.wait_serving(second)
        registry.rollback(reason="test: back to the first")
        load.wait_serving(first)
        registry.pin(reason="test: hold production")
        registry.rollback(to=second, reason="test: the second again, while pinned")
        load.wait_serving(second)

    # Each wait above saw the version it waited for answer; no request failed meanwhile.
    assert load.failures == []
    assert set(load.versions) == {first, second}


def test_a_corrupted_production_artifact_is_never_served_and_is_alerted(settings: Settings):
    registry = churn_registry(settings.models_dir)
    good, bad = servable(registry), servable(registry, "random_forest")
    registry.promote(good)
    with (
        running(build_server(settings, [NAME], FAST)) as url,
        Load(f"{url}/v1/models/{NAME}/predict", record(), clients=2) as load,
    ):
        load.wait_serving(good)
        promote_corrupted(registry, bad)
        refused = _wait_refused(url, bad)
        seen_after = len(load.versions)
        load.wait_for(lambda: len(load.versions) > seen_after + 20)

    assert bad not in load.versions
    assert load.failures == []
    assert "corrupt or truncated" in refused[bad]
    alerts = [json.loads(line) for line in alert_log_path(settings).read_text().splitlines()]
    assert [(a["kind"], a["details"]["version"], a["details"]["serving"]) for a in alerts] == [
        ("serving_refused_version", bad, good)
    ]


def test_a_version_failing_its_smoke_test_is_never_served(settings: Settings):
    registry = churn_registry(settings.models_dir)
    good, constant = servable(registry), servable(registry, model=broken("constant"))
    registry.promote(good)
    with running(build_server(settings, [NAME], FAST)) as url:
        registry.promote(constant)
        refused = _wait_refused(url, constant)
        answer = httpx.post(f"{url}/v1/models/{NAME}/predict", json=record()).json()

    assert "probabilities are identical" in refused[constant]
    assert answer["version"] == good


def test_a_refused_version_is_served_once_production_moves_to_a_good_one(settings: Settings):
    registry = churn_registry(settings.models_dir)
    good, constant = servable(registry), servable(registry, model=broken("constant"))
    newer = servable(registry, "hist_gradient_boosting")
    registry.promote(good)
    with running(build_server(settings, [NAME], FAST)) as url:
        registry.promote(constant)
        _wait_refused(url, constant)
        registry.promote(newer)
        with Load(f"{url}/v1/models/{NAME}/predict", record(), clients=1) as load:
            load.wait_serving(newer)

    assert load.failures == []


def promote_corrupted(registry: ModelRegistry, version: str) -> None:
    """Corrupt ``version``'s artifact, then make it production as ``promote`` would have
    before the corruption: what the server meets when the disk rots after a promotion
    (``promote`` itself verifies, and the watcher could load it before the byte flips)."""
    flip_a_byte(registry.get(version).artifact_path)
    previous = registry.aliases().production

    def move(index: dict) -> None:
        index["aliases"] = {"production": version, "previous_production": previous}

    update_index(registry.root, move)


def _wait_refused(url: str, version: str, timeout_s: float = 30) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    while True:
        refused = httpx.get(f"{url}/v1/models/{NAME}").json()["refused"]
        if version in refused:
            return refused
        assert time.monotonic() < deadline, f"{version} was not refused in time"
        time.sleep(0.05)
