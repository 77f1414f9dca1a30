"""The demo ticket API as a companion of ``training-pipeline run`` and ``ui``.

Registered in the entry-point group ``training_pipeline.companions``: the pipeline serves
it for a run when the project's tickets declaration resolves to ``DEMO_API_URL``
(``examples/defs/churn/support/defs.yaml``) and nothing answers there yet.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from churn_demo import declared
from churn_demo.api_server import DEMO_API_HOST, DEMO_API_PORT, DEMO_API_URL, DemoApiServer
from training_pipeline.settings import Settings


class TicketApiCompanion:
    url = DEMO_API_URL

    def answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    @contextmanager
    def serve(self, settings: Settings) -> Iterator[str]:
        try:
            server = DemoApiServer(settings, host=DEMO_API_HOST, port=DEMO_API_PORT)
        except OSError as error:
            variable = declared.api_url_variable(settings)
            raise RuntimeError(
                f"cannot serve the demo ticket API on {self.url} ({error}); stop what "
                f"holds the port or point {variable} at your ticket API"
            ) from error
        with server:
            yield server.url
