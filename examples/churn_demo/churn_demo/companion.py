"""The demo ticket API as a companion of ``training-pipeline run`` and ``ui``.

Registered in the entry-point group ``training_pipeline.companions``: the pipeline serves
it for a run when the project's tickets declaration resolves to ``DEMO_API_URL``
(``examples/defs/churn/support/defs.yaml``).  A server already answering there is reused
only when its ``/health`` names this data directory's ticket store; anything else (the
demo API of another checkout, an unrelated service) is never taken for ours.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from churn_demo import declared
from churn_demo.api_server import (
    DEMO_API_HOST,
    DEMO_API_PORT,
    SERVICE,
    DemoApiServer,
    store_fingerprint,
)
from training_pipeline.settings import Settings


class TicketApiCompanion:
    def __init__(self, host: str = DEMO_API_HOST, port: int = DEMO_API_PORT) -> None:
        self.host, self.port = host, port
        self.url = f"http://{host}:{port}"

    def is_ours(self, settings: Settings) -> bool:
        """Whether the demo API of this data directory already answers at ``url``."""
        try:
            response = httpx.get(f"{self.url}/health", timeout=1.0)
            health = response.json()
        except (httpx.HTTPError, ValueError):  # nothing there, or not JSON
            return False
        return (
            response.status_code == 200
            and isinstance(health, dict)
            and health.get("service") == SERVICE
            and health.get("store") == store_fingerprint(settings)
        )

    @contextmanager
    def serve(self, settings: Settings, any_port: bool) -> Iterator[str]:
        """Serve ``url`` for the block; when its port is held, a free port if
        ``any_port``, else an error naming the address.  Yields the URL served."""
        try:
            server = DemoApiServer(settings, host=self.host, port=self.port)
        except OSError as error:
            if not any_port:
                variable = declared.api_url_variable(settings)
                raise RuntimeError(
                    f"cannot serve the demo ticket API on {self.url}: the port is held by "
                    f"something that is not this data directory's demo API ({error}); stop "
                    f"it, or unset {variable} so that a free port is used"
                ) from error
            server = DemoApiServer(settings, host=self.host, port=0)
        with server:
            yield server.url
