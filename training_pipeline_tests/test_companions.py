"""The product starts an example's service only through a companion entry point, and only
when a declared HTTP source resolves to the companion's address."""

from __future__ import annotations

import ast
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from churn_demo import cli as demo_cli
from churn_demo.api_server import DEMO_API_URL, DemoApiServer
from churn_demo.companion import TicketApiCompanion

from training_pipeline import companions
from training_pipeline.settings import REPO_ROOT, Settings


@dataclass
class FakeCompanion:
    url: str
    ours_answering: bool = False
    port_held: bool = False  # by something else: served at FREE_URL when any port will do
    served: list[str] = field(default_factory=list)
    any_port: list[bool] = field(default_factory=list)

    def is_ours(self, settings: Settings) -> bool:
        return self.ours_answering

    @contextmanager
    def serve(self, settings: Settings, any_port: bool) -> Iterator[str]:
        self.any_port.append(any_port)
        if self.port_held and not any_port:
            raise RuntimeError(f"{self.url} is held")
        self.served.append("start")
        yield FREE_URL if self.port_held else self.url
        self.served.append("stop")


FREE_URL = "http://127.0.0.1:40123"


def test_the_churn_tickets_declaration_resolves_to_the_demo_address_by_default(settings):
    assert companions.declared_api_urls(settings) == {DEMO_API_URL}


def test_a_base_url_variable_moves_the_declaration_away_from_the_demo(settings, monkeypatch):
    monkeypatch.setenv("TRAINING_PIPELINE_API_URL", "https://tickets.example.com/")
    assert companions.declared_api_urls(settings) == {"https://tickets.example.com"}


def test_only_a_companion_at_a_declared_address_is_wanted():
    here, elsewhere = FakeCompanion("http://127.0.0.1:8765/"), FakeCompanion("http://x:1")
    wanted = companions.wanted_companions(
        {"http://127.0.0.1:8765"}, {"here": here, "elsewhere": elsewhere}
    )
    assert wanted == {"here": here}


def test_a_wanted_companion_is_served_for_the_block_unless_its_own_server_answers(
    settings, monkeypatch
):
    demo = FakeCompanion(DEMO_API_URL)
    answered = FakeCompanion(DEMO_API_URL, ours_answering=True)
    monkeypatch.setattr(
        companions, "registered_companions", lambda: {"demo": demo, "answered": answered}
    )
    with companions.companions_for(settings) as lines:
        assert demo.served == ["start"]
        assert lines == [
            f"answered: using the one already serving this data at {DEMO_API_URL}",
            f"demo: serving {DEMO_API_URL} for this command",
        ]
    assert demo.served == ["start", "stop"] and answered.served == []


def test_a_port_held_by_another_server_moves_the_companion_and_the_source_with_it(
    settings, monkeypatch
):
    """Regression: `make ui` read another checkout's ticket API on port 8765."""
    demo = FakeCompanion(DEMO_API_URL, port_held=True)
    monkeypatch.setattr(companions, "registered_companions", lambda: {"demo": demo})
    with companions.companions_for(settings) as lines:
        assert os.environ["TRAINING_PIPELINE_API_URL"] == FREE_URL
        assert companions.declared_api_urls(settings) == {FREE_URL}
        assert lines == [
            f"demo: serving {FREE_URL} for this command ({DEMO_API_URL} is held by another server)"
        ]
    assert demo.any_port == [True] and demo.served == ["start", "stop"]
    assert "TRAINING_PIPELINE_API_URL" not in os.environ


def test_a_held_port_the_user_chose_is_refused_not_moved(settings, monkeypatch):
    demo = FakeCompanion(DEMO_API_URL, port_held=True)
    monkeypatch.setattr(companions, "registered_companions", lambda: {"demo": demo})
    monkeypatch.setenv("TRAINING_PIPELINE_API_URL", DEMO_API_URL)
    with pytest.raises(RuntimeError, match="is held"), companions.companions_for(settings):
        pass
    assert demo.any_port == [False] and demo.served == []


def test_no_companion_starts_when_the_api_is_declared_elsewhere(settings, monkeypatch):
    demo = FakeCompanion(DEMO_API_URL)
    monkeypatch.setattr(companions, "registered_companions", lambda: {"demo": demo})
    monkeypatch.setenv("TRAINING_PIPELINE_API_URL", "https://tickets.example.com")
    with companions.companions_for(settings) as lines:
        assert lines == []
    assert demo.served == []


def test_the_churn_demo_registers_its_ticket_api_as_a_companion():
    registered = companions.registered_companions()
    assert isinstance(registered["ticket_api"], TicketApiCompanion)
    assert registered["ticket_api"].url == DEMO_API_URL


def test_the_product_imports_nothing_from_the_demo_package():
    offenders = []
    for path in sorted((REPO_ROOT / "training_pipeline").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [f"{path}: {n}" for n in names if n.split(".")[0] == "churn_demo"]
    assert offenders == []


@pytest.mark.parametrize("command", [["world"], ["api"]])
def test_every_churn_demo_command_checks_the_settings_first(settings, monkeypatch, capsys, command):
    monkeypatch.setenv("TRAINING_PIPELINE_CRM_URL", "garbage")
    assert demo_cli.main(command) == 2
    assert "TRAINING_PIPELINE_CRM_URL='garbage' is refused" in capsys.readouterr().err
    assert not settings.data_dir.exists()


class _ForeignHealth(BaseHTTPRequestHandler):
    """A server that is not ours but answers /health as many do."""

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        body = json.dumps({"status": "ok"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return None


@pytest.fixture
def foreign_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ForeignHealth)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_foreign_server_answering_health_is_not_taken_for_the_demo_api(settings, foreign_port):
    companion = TicketApiCompanion(port=foreign_port)
    assert companion.is_ours(settings) is False


def test_the_demo_api_of_another_data_directory_is_not_ours(settings, tmp_path):
    other = replace(settings, data_dir=tmp_path / "other-checkout" / "data")
    with DemoApiServer(other, host="127.0.0.1", port=0) as server:
        companion = TicketApiCompanion(port=int(server.url.rsplit(":", 1)[1]))
        assert companion.is_ours(settings) is False
        assert companion.is_ours(other) is True


def test_the_demo_api_serving_this_data_directory_is_reused(settings, monkeypatch):
    with DemoApiServer(settings, host="127.0.0.1", port=0) as server:
        companion = TicketApiCompanion(port=int(server.url.rsplit(":", 1)[1]))
        monkeypatch.setattr(companions, "registered_companions", lambda: {"api": companion})
        monkeypatch.setenv("TRAINING_PIPELINE_API_URL", server.url)
        with companions.companions_for(settings) as lines:
            assert lines == [f"api: using the one already serving this data at {server.url}"]


def test_the_demo_api_moves_to_a_free_port_when_a_foreign_server_holds_its_own(
    settings, foreign_port
):
    companion = TicketApiCompanion(port=foreign_port)
    with companion.serve(settings, any_port=True) as url:
        assert url != companion.url
        assert TicketApiCompanion(port=int(url.rsplit(":", 1)[1])).is_ours(settings)


def test_the_demo_api_refuses_a_held_port_it_may_not_leave(settings, foreign_port):
    companion = TicketApiCompanion(port=foreign_port)
    refused = f"cannot serve the demo ticket API on {companion.url}"
    with pytest.raises(RuntimeError, match=refused), companion.serve(settings, any_port=False):
        pass
