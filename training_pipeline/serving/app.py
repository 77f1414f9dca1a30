"""The HTTP layer over ``ServedModels``, the prediction log and metrics.

``POST /v1/models/{name}/predict`` is plain ASGI in front of Starlette, which serves
every other route and the lifespan.  Starlette's middleware, router, ``Request`` and
``JSONResponse`` cost more CPU per request than the fast path's prediction (measured
in process: 0.32 -> 0.2 ms for a whole request); the route does the same work by hand:
the same statuses, errors, headers, metrics, prediction log and shadow.

Predictions run in the event loop itself rather than in a worker thread: a
single-record prediction takes 0.03-0.2 ms of CPU on the fast path (a few ms on the
plain one) under the GIL, so a thread hop would only add latency on a 2-core machine.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from training_pipeline.serving.features import RequestError
from training_pipeline.serving.latency import requests_first
from training_pipeline.serving.loaded import LoadedModel
from training_pipeline.serving.metrics import ServingMetrics
from training_pipeline.serving.prediction_log import PredictionLog, entry
from training_pipeline.serving.swap import ServedModels
from training_pipeline.serving.threads import one_thread_per_prediction

REQUEST_ID = b"x-request-id"
PREDICT_PREFIX, PREDICT_SUFFIX = "/v1/models/", "/predict"


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1_000_000
    max_records: int = 1000
    watch_interval_s: float = 1.0


def build_app(
    served: ServedModels,
    metrics: ServingMetrics,
    prediction_log: PredictionLog | None,
    limits: Limits = Limits(),
) -> ServingApp:
    """The app; its lifespan starts the production watcher and flushes the log at exit."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        one_thread_per_prediction()
        served.start(limits.watch_interval_s)
        try:
            with requests_first():
                yield
        finally:
            served.stop()
            if prediction_log is not None:
                prediction_log.close()

    async def predict(scope: Scope, receive: Receive, send: Send, name: str) -> None:
        started = time.perf_counter()
        request_id = _header(scope, REQUEST_ID) or uuid.uuid4().hex
        try:
            status, payload, shadow = await _predict(receive, scope, name, request_id)
        except _Disconnected:
            return
        if name in served.slots:
            metrics.observe_request(name, status, time.perf_counter() - started)
        body = orjson.dumps(payload)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body)),
            (REQUEST_ID, request_id.encode("latin-1")),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        if shadow is not None:
            # After the response is sent: the client never waits for, or sees, the shadow.
            # On the event loop's thread, like the request: its OpenMP limit holds here.
            loaded, records = shadow
            _log(request_id, loaded, "shadow", records, loaded.predict(records))

    async def _predict(
        receive: Receive, scope: Scope, name: str, request_id: str
    ) -> tuple[int, dict, tuple[LoadedModel, list] | None]:
        if name not in served.slots:
            return 404, {"error": f"no model {name!r} is served here", "field": "name"}, None
        loaded = served.get(name)  # read once: this request finishes on this version
        if loaded is None:
            return 503, {"error": f"model {name!r} has no verified production version yet"}, None
        try:
            body = await _json_body(scope, receive, limits.max_body_bytes)
            records, single = loaded.features.records(body, limits.max_records)
        except RequestError as error:
            return error.status, error.to_dict(), None
        outputs = loaded.predict(records)
        metrics.records.labels(name).inc(len(outputs))
        _log(request_id, loaded, "production", records, outputs)
        answer = {"model": name, "version": loaded.version, "request_id": request_id}
        answer |= outputs[0] if single else {"predictions": outputs}
        shadow = served.slots[name].shadow
        if shadow is None or prediction_log is None:
            return 200, answer, None
        return 200, answer, (shadow, records)

    def _log(request_id: str, loaded: LoadedModel, role: str, records: list, outputs) -> None:
        if prediction_log is None:
            return
        at = datetime.now(UTC).isoformat()
        spec = loaded.features
        prediction_log.append(
            entry(
                request_id,
                index,
                loaded.name,
                loaded.version,
                role,
                at,
                spec.features_of(record),
                output,
                *spec.identity(record),
            )
            for index, (record, output) in enumerate(zip(records, outputs, strict=True))
        )

    async def list_models(request: Request) -> Response:
        return JSONResponse({"models": [_summary(name) for name in served.slots]})

    async def describe(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in served.slots:
            return JSONResponse({"error": f"no model {name!r} is served here"}, 404)
        return JSONResponse(_summary(name, full=True))

    def _summary(name: str, full: bool = False) -> dict:
        loaded, slot = served.get(name), served.slots[name]
        refused = dict(slot.refused)
        if loaded is None:
            return {"name": name, "version": None, "ready": False, "refused": refused}
        shown = loaded.describe() if full else {"name": name, "version": loaded.version}
        shown["served_by"] = loaded.served_by
        shadow = None if slot.shadow is None else slot.shadow.version
        return shown | {"ready": True, "refused": refused, "shadow": shadow}

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> Response:
        models = {name: served.get(name) is not None for name in served.slots}
        watching = served.watching
        ready = all(models.values()) and watching
        body = {"ready": ready, "models": models, "watching_production": watching}
        return JSONResponse(body, 200 if ready else 503)

    async def prometheus(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=metrics.content_type)

    routes = [
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{name}", describe, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
    ]
    return ServingApp(Starlette(routes=routes, lifespan=lifespan), predict)


Predict = Callable[[Scope, Receive, Send, str], Awaitable[None]]


class ServingApp:
    """The predict route, by hand; everything else (routes, lifespan) to Starlette."""

    def __init__(self, starlette: Starlette, predict: Predict) -> None:
        self.starlette, self._predict = starlette, predict

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = _predict_route(scope["path"]) if scope["type"] == "http" else None
        if name is None:
            await self.starlette(scope, receive, send)
        elif scope["method"] != "POST":
            answer = JSONResponse({"error": "method not allowed; use POST"}, 405)
            answer.headers["allow"] = "POST"
            await answer(scope, receive, send)
        else:
            await self._predict(scope, receive, send, name)


def _predict_route(path: str) -> str | None:
    """``name`` for ``/v1/models/{name}/predict`` (a name has no slash), else None."""
    if not (path.startswith(PREDICT_PREFIX) and path.endswith(PREDICT_SUFFIX)):
        return None
    name = path[len(PREDICT_PREFIX) : -len(PREDICT_SUFFIX)]
    return name if name and "/" not in name else None


def _header(scope: Scope, wanted: bytes) -> str | None:
    """A request header's value (ASGI servers give the names in lower case)."""
    for key, value in scope["headers"]:
        if key == wanted:
            return value.decode("latin-1")
    return None


class _Disconnected(Exception):
    """The client went away before sending its whole body: nobody to answer."""


async def _json_body(scope: Scope, receive: Receive, max_bytes: int) -> object:
    """The parsed body; 413 past ``max_bytes`` (declared or actually sent), 422 if not
    JSON (NaN, Infinity and integers beyond 64 bits are not JSON to orjson either)."""
    declared = _header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise RequestError(413, "", f"body of {declared} bytes; at most {max_bytes}")
    received = bytearray()
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        received += message.get("body", b"")
        more = message.get("more_body", False)
        if len(received) > max_bytes:
            raise RequestError(413, "", f"body larger than {max_bytes} bytes")
    try:
        return orjson.loads(received)
    except orjson.JSONDecodeError as error:
        raise RequestError(422, "", f"the body is not valid JSON: {error}") from None
