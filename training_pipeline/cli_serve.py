"""``training-pipeline serve``: the production model of each declared model over HTTP.

    training-pipeline serve [--model NAME ...] [--host 127.0.0.1] [--port 8000]

Bound to 127.0.0.1 unless told otherwise: the endpoint has no authentication, so
exposing it is a decision to make in front of it (a reverse proxy), not a default.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from training_pipeline.settings import Settings

if TYPE_CHECKING:
    from training_pipeline.serving.app import Limits, ServingApp


def build_server(
    settings: Settings, models: Sequence[str], limits: Limits, shadowed: Sequence[str] = ()
) -> ServingApp:
    """The app serving ``models`` (and the candidates of ``shadowed`` in shadow):
    refusals alerted (log and webhook, once per version), swaps and refusals counted,
    predictions logged under the data directory."""
    from training_pipeline.alerts import AlertDestination, deliver_once
    from training_pipeline.lifecycle_alerts import serving_refused_alert
    from training_pipeline.registries import registry_of
    from training_pipeline.serving.app import build_app
    from training_pipeline.serving.loaded import NotServable
    from training_pipeline.serving.metrics import ServingMetrics
    from training_pipeline.serving.prediction_log import PredictionLog
    from training_pipeline.serving.shadow import mark_started
    from training_pipeline.serving.swap import ServedModels

    metrics = ServingMetrics()
    destination = AlertDestination.of(settings)

    def refused(refusal: NotServable) -> None:
        metrics.refused.labels(refusal.model).inc()
        current = served.get(refusal.model)
        serving = None if current is None else current.version
        alert = serving_refused_alert(refusal.model, refusal.version, refusal.reason, serving)
        deliver_once(alert, destination)

    def shadowing(model: str, version: str) -> None:
        mark_started(settings.prediction_logs_dir, model, version, datetime.now(UTC))

    registries = {name: registry_of(settings, name) for name in models}
    served = ServedModels(
        registries,
        on_refused=refused,
        on_swapped=metrics.swapped,
        shadowed=shadowed,
        on_shadowing=shadowing,
    )
    log = PredictionLog(settings.prediction_logs_dir, on_dropped=metrics.log_dropped.inc)
    return build_app(served, metrics, log, limits)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from training_pipeline.components.models import ModelChoiceError, declared_models
    from training_pipeline.serving.app import Limits

    settings = Settings.from_env()
    specs = declared_models(settings)
    declared = list(specs)
    unknown = sorted(set(args.model or ()) - set(declared))
    if unknown or not declared:
        error = ModelChoiceError(
            f"no model named {', '.join(unknown)}; declared: {', '.join(declared) or 'none'}"
        )
        print(f"training-pipeline serve: {error}", file=sys.stderr)
        return 1
    limits = Limits(args.max_body_bytes, args.max_records, args.watch_interval)
    served = args.model or declared
    shadowed = [name for name in served if specs[name].serve.shadow]
    app = build_server(settings, served, limits, shadowed)
    # Named rather than "auto": auto falls back to the pure-Python h11 parser and asyncio
    # loop without a word if the C ones are missing, at several times the CPU a request.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        http="httptools",
        loop="uvloop",
        access_log=False,
        log_level="info",
    )
    return 0


def add_serve_command(commands: argparse._SubParsersAction, loads_project) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve each model's production version over HTTP, swapped on promotion",
        description=(
            "POST /v1/models/{name}/predict with one record (an object) or a list; GET "
            "/v1/models, /v1/models/{name}, /healthz, /readyz, /metrics. Watches each "
            "model's registry and swaps in a new production version once it verifies and "
            "passes its smoke test; a version that does not is never served and is alerted. "
            "Every prediction is logged under $TRAINING_PIPELINE_DATA_DIR/serving/predictions."
        ),
    )
    serve.add_argument(
        "--model", action="append", metavar="NAME", help="a model to serve (repeat; default: all)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000, help="0: any free port (default 8000)")
    serve.add_argument(
        "--watch-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how often the registries are checked for a new production",
    )
    serve.add_argument("--max-body-bytes", type=int, default=1_000_000)
    serve.add_argument("--max-records", type=int, default=1000)
    serve.set_defaults(handler=loads_project(_serve))
