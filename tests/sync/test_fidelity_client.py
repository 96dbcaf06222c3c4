"""Where the real API contradicted our first reading of it (API-NOTES), over `responses`."""

from __future__ import annotations

import pytest
import responses

from sync.client import Client
from sync.clock import FakeClock
from sync.errors import ApiError
from sync.remote import other_dependents
from tests.canary import CANARY_KEY

BASE = "https://api.elevenlabs.io"
KB = f"{BASE}/v1/convai/knowledge-base"
AGENT = "agent_" + "a" * 28


@pytest.fixture
def client() -> Client:
    return Client(BASE, CANARY_KEY, clock=FakeClock())


@responses.activate
def test_content_served_as_text_html_without_charset_is_decoded_as_utf8(client: Client) -> None:
    text = "# 2025-Q2\n\nАренда во втором квартале: 1 200 000 ₽\n"
    responses.get(f"{KB}/d1/content", body=text.encode("utf-8"), content_type="text/html")
    assert client.get_content("d1") == text


def deps(agents: list[dict[str, object]], branches: list[dict[str, object]]) -> dict[str, object]:
    return {"agents": agents, "branches": branches, "has_more": False, "next_cursor": None}


def branch(agent_id: str, branch_id: str, is_main: bool) -> dict[str, object]:
    return {
        "agent_id": agent_id,
        "agent_name": "Support",
        "branch_id": branch_id,
        "branch_name": "Main" if is_main else "experiment",
        "is_main": is_main,
    }


@responses.activate
def test_our_agents_main_branch_is_us_not_another_user(client: Client) -> None:
    ours: dict[str, object] = {"type": "available", "id": AGENT, "name": "Support"}
    responses.get(
        f"{KB}/d1/dependent-agents", json=deps([ours], [branch(AGENT, "agtbranch_main", True)])
    )
    assert other_dependents(client, "d1", AGENT) == []


@responses.activate
def test_any_other_branch_still_uses_the_document(client: Client) -> None:
    other_agent = "agent_" + "b" * 28
    responses.get(
        f"{KB}/d1/dependent-agents",
        json=deps(
            [],
            [branch(AGENT, "agtbranch_exp", False), branch(other_agent, "agtbranch_x", True)],
        ),
    )
    users = other_dependents(client, "d1", AGENT)
    assert len(users) == 2
    assert any("agtbranch_exp" in u and AGENT in u for u in users)
    assert any(other_agent in u for u in users)


@responses.activate
def test_a_repeated_cursor_is_an_error_not_an_endless_loop(client: Client) -> None:
    page = {"agents": [], "branches": [], "has_more": True, "next_cursor": "c1"}
    responses.get(f"{KB}/d1/dependent-agents", json=page)
    with pytest.raises(ApiError, match="cursor"):
        other_dependents(client, "d1", AGENT)
    assert len(responses.calls) <= 3


@responses.activate
def test_a_document_list_that_repeats_its_cursor_is_an_error(client: Client) -> None:
    page = {"documents": [], "has_more": True, "next_cursor": "same"}
    responses.get(KB, json=page)
    with pytest.raises(ApiError, match="cursor"):
        list(client.list_documents(search="kb-sync:"))
    assert len(responses.calls) <= 3
