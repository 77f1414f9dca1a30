"""A small JSON change feed on loopback that pages in any of the four declared styles.

Records are served in ``(updated_at, id)`` order from ``updated_since`` (inclusive), as
an incremental API promises. ``faults`` script misbehaviour request by request.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit


@dataclass
class Fault:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    repeat_previous_page: bool = False  # answer with the previous page's records
    body: Any = None  # answer with this body instead of a page


class FeedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, style: str, records: list[dict[str, Any]]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.style = style
        self.records = records
        self.faults: list[Fault] = []  # one per request, from the next request on
        self.requests: list[str] = []  # path?query of every request, in order
        self._previous: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> FeedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()
        self.server_close()

    def answer(self, target: str) -> tuple[int, dict[str, str], Any]:
        self.requests.append(target)
        fault = self.faults.pop(0) if self.faults else Fault()
        if fault.status != 200:
            return fault.status, fault.headers, {"error": "try later"}
        if fault.body is not None:
            return 200, fault.headers, fault.body
        query = {k: v[0] for k, v in parse_qs(urlsplit(target).query).items()}
        since = query.get("updated_since", "")
        feed = sorted(
            (r for r in self.records if r["updated_at"] >= since),
            key=lambda r: (r["updated_at"], r["id"]),
        )
        size = int(query.get("limit") or query.get("per_page") or 2)
        start = {
            "cursor": int(query.get("cursor", 0)),
            "page_number": (int(query.get("page", 1)) - 1) * size,
            "offset": int(query.get("offset", 0)),
            "link_header": int(query.get("after", 0)),
        }[self.style]
        page = feed[start : start + size]
        more = start + size < len(feed)
        if fault.repeat_previous_page:
            page = self._previous
        self._previous = page
        headers: dict[str, str] = {}
        if self.style == "cursor":
            body: Any = {
                "result": {"items": page},
                "meta": {"next": str(start + size) if more else None},
            }
        elif self.style == "page_number":
            body = {"items": page}
        elif self.style == "offset":
            body = page  # the body is the list
        else:
            body = {"data": page}
            if more:
                link = urlencode({**query, "after": start + size})
                headers["Link"] = f'</readings?{link}>; rel="next", </readings>; rel="first"'
        return 200, headers, body


class _Handler(BaseHTTPRequestHandler):
    server: FeedServer

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        status, headers, body = self.server.answer(self.path)
        payload = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return
