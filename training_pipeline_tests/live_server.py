"""The serving app on a real uvicorn server, on a free port, in a background thread;
and a load of concurrent clients that record every response."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette


@contextmanager
def running(app: Starlette) -> Iterator[str]:
    """The base URL of ``app`` served on 127.0.0.1 at a port the OS chose."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    (port,) = {s.getsockname()[1] for srv in server.servers for s in srv.sockets}
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@dataclass
class Load:
    """``clients`` threads posting ``body`` back to back until stopped."""

    url: str
    body: Any
    clients: int = 4
    statuses: list[int] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        for _ in range(self.clients):
            thread = threading.Thread(target=self._post, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _post(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                try:
                    response = client.post(self.url, json=self.body)
                except httpx.HTTPError as error:  # a refused or dropped connection is a failure
                    self.failures.append(f"{type(error).__name__}: {error}")
                    continue
                self.statuses.append(response.status_code)
                if response.status_code == 200:
                    self.versions.append(response.json()["version"])
                else:
                    self.failures.append(f"{response.status_code}: {response.text}")

    def wait_for(self, condition: Callable[[], bool], timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, "condition not met in time"
            time.sleep(0.02)

    def wait_serving(self, version: str, timeout_s: float = 30) -> None:
        """Until a response comes from ``version`` (and a few more after it)."""
        self.wait_for(lambda: version in self.versions[-3:], timeout_s)
