"""The product starts an example's service only through a companion entry point, and only
when a declared HTTP source resolves to the companion's address."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from churn_demo import cli as demo_cli
from churn_demo.api_server import DEMO_API_URL
from churn_demo.companion import TicketApiCompanion

from training_pipeline import companions
from training_pipeline.settings import REPO_ROOT, Settings


@dataclass
class FakeCompanion:
    url: str
    answering: bool = False
    served: list[str] = field(default_factory=list)

    def answers(self) -> bool:
        return self.answering

    @contextmanager
    def serve(self, settings: Settings) -> Iterator[str]:
        self.served.append("start")
        yield self.url
        self.served.append("stop")


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


def test_a_wanted_companion_is_served_for_the_block_unless_something_answers(settings, monkeypatch):
    demo = FakeCompanion(DEMO_API_URL)
    answered = FakeCompanion(DEMO_API_URL, answering=True)
    monkeypatch.setattr(
        companions, "registered_companions", lambda: {"demo": demo, "answered": answered}
    )
    with companions.companions_for(settings) as started:
        assert started == ["demo"] and demo.served == ["start"]
    assert demo.served == ["start", "stop"] and answered.served == []


def test_no_companion_starts_when_the_api_is_declared_elsewhere(settings, monkeypatch):
    demo = FakeCompanion(DEMO_API_URL)
    monkeypatch.setattr(companions, "registered_companions", lambda: {"demo": demo})
    monkeypatch.setenv("TRAINING_PIPELINE_API_URL", "https://tickets.example.com")
    with companions.companions_for(settings) as started:
        assert started == []
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
