"""CPU per single-record prediction, in process: the figure that does not depend on how
busy the machine is.

    .venv/bin/python scripts/bench_serving_cpu.py [--requests 2000]

For the two versions ``bench_serving.py`` serves (the product's logistic regression and
gradient boosting on the churn features), prints the CPU milliseconds
(``time.process_time``) per record of: the version's pipeline (``predict_proba`` on a
one-row frame), the path the server serves it by (``LoadedModel.predict``), and a whole
request through the ASGI app (validation, prediction, prediction log, metrics, JSON),
without the HTTP server and socket around it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_serving import one_record, registry_with_two_versions  # noqa: E402

from training_pipeline.ml.registry import ModelRegistry  # noqa: E402
from training_pipeline.serving.app import build_app  # noqa: E402
from training_pipeline.serving.loaded import LoadedModel, load_servable  # noqa: E402
from training_pipeline.serving.metrics import ServingMetrics  # noqa: E402
from training_pipeline.serving.prediction_log import PredictionLog  # noqa: E402
from training_pipeline.serving.swap import ServedModels  # noqa: E402
from training_pipeline.serving.threads import one_thread_per_prediction  # noqa: E402


def cpu_ms(call: Callable[[], object], n: int) -> float:
    for _ in range(min(n, 50)):  # warm-up
        call()
    started = time.process_time()
    for _ in range(n):
        call()
    return (time.process_time() - started) / n * 1000


def asgi_request(app, body: dict) -> Callable[[], None]:
    """One POST to the predict route, straight into the ASGI app."""
    raw = json.dumps(body).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/models/churn/predict",
        "raw_path": b"/v1/models/churn/predict",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(raw))],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
        "root_path": "",
    }
    loop = asyncio.new_event_loop()

    async def call() -> None:
        messages = [{"type": "http.request", "body": raw, "more_body": False}]
        sent = []

        async def receive() -> dict:
            return messages.pop() if messages else {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        await app(dict(scope), receive, send)
        if sent[0]["status"] != 200:
            raise RuntimeError(f"the app answered {sent[0]['status']}: {sent[1]['body']!r}")

    return lambda: loop.run_until_complete(call())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    n = parser.parse_args().requests
    one_thread_per_prediction()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-serving-cpu-"))
    try:
        registry, versions = registry_with_two_versions(data_dir)
        body = one_record()
        for version in versions:
            family = registry.metadata(version)["family"]
            print(f"{family}: {prediction_cpu(load_servable(registry, 'churn', version), body, n)}")
            if registry.aliases().production != version:
                registry.rollback(to=version, reason="bench", reject=False)
            request = cpu_ms(asgi_request(app_for(registry, data_dir), body), n)
            print(f"{family}: whole request through the ASGI app {request:.3f} ms CPU")
    finally:
        shutil.rmtree(data_dir)


def prediction_cpu(loaded: LoadedModel, body: dict, n: int) -> str:
    frame = loaded.features.as_frame([body])
    pipeline = cpu_ms(lambda: loaded.problem.task_adapter.output(loaded.pipeline, frame), n)
    served = cpu_ms(lambda: loaded.predict([body]), n)
    return (
        f"pipeline {pipeline:.3f} ms, served by the {loaded.served_by} path {served:.3f} ms "
        f"CPU per record ({loaded.path_reason})"
    )


def app_for(registry: ModelRegistry, data_dir: Path):
    served = ServedModels({"churn": registry}, on_refused=print)
    served.refresh_all()
    log = PredictionLog(data_dir / "predictions", on_dropped=print)
    return build_app(served, ServingMetrics(), log)


if __name__ == "__main__":
    main()
