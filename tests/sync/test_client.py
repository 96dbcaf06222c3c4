"""The client over real HTTP mocked by `responses`: error mapping, retries, create safety."""

from __future__ import annotations

import json

import pytest
import requests
import responses

from sync.client import Client
from sync.clock import FakeClock
from sync.errors import AuthError, NotFound, RateLimited, ServerError, SyncError, ValidationFailed
from tests.canary import CANARY_KEY
from tests.contract.spec import validate_request

BASE = "https://api.elevenlabs.io"
KB = f"{BASE}/v1/convai/knowledge-base"


@pytest.fixture
def client() -> Client:
    return Client(BASE, CANARY_KEY, clock=FakeClock())


@responses.activate
def test_sends_the_key_header_and_parses_errors(client: Client) -> None:
    responses.get(
        f"{BASE}/v1/convai/agents/a1",
        status=401,
        json={"detail": {"status": "invalid_api_key", "message": "Invalid API key"}},
        headers={"request-id": "req-1"},
    )
    with pytest.raises(AuthError) as e:
        client.get_agent("a1")
    assert responses.calls[0].request.headers["xi-api-key"] == CANARY_KEY
    assert e.value.status == 401 and e.value.code == "invalid_api_key"
    assert e.value.request_id == "req-1"
    assert CANARY_KEY not in str(e.value)


@responses.activate
def test_an_error_without_a_request_id_is_traced_by_its_x_trace_id(client: Client) -> None:
    """[field] a real 401 carried no ``request-id`` header and no ``detail.request_id``, only
    ``x-trace-id`` (home-assistant/core#160414): that is the id to quote to support."""
    responses.get(
        f"{BASE}/v1/convai/agents/a1",
        status=401,
        json={"detail": {"status": "quota_exceeded", "message": "m"}},
        headers={"x-trace-id": "5d41402abc4b2a76b9719d911017c592"},
    )
    with pytest.raises(AuthError) as e:
        client.get_agent("a1")
    assert e.value.request_id == "5d41402abc4b2a76b9719d911017c592"


@pytest.mark.parametrize(
    ("status", "body", "exc", "code"),
    [
        (
            404,
            {"detail": {"status": "knowledge_base_documentation_not_found", "message": "m"}},
            NotFound,
            "knowledge_base_documentation_not_found",
        ),
        (
            422,
            {"detail": [{"type": "missing", "loc": ["body", "text"], "msg": "Field required"}]},
            ValidationFailed,
            "validation_error",
        ),
        (
            422,
            {"detail": {"status": "x", "code": "rag_index_not_ready", "message": "m"}},
            ValidationFailed,
            "rag_index_not_ready",
        ),
        (400, {"detail": "plain string"}, Exception, None),
    ],
)
@responses.activate
def test_error_shapes(
    client: Client, status: int, body: object, exc: type, code: str | None
) -> None:
    responses.get(f"{KB}/d1", status=status, json=body)
    with pytest.raises(exc) as e:
        client.get_document("d1")
    assert getattr(e.value, "code", None) == code


@responses.activate
def test_429_without_retry_after_then_success(client: Client) -> None:
    responses.get(
        f"{KB}/d1",
        status=429,
        json={
            "detail": {
                "status": "too_many_concurrent_requests",
                "code": "concurrent_limit_exceeded",
                "message": "slow",
            }
        },
    )
    responses.get(f"{KB}/d1", json={"id": "d1"})
    assert client.get_document("d1") == {"id": "d1"}
    assert len(responses.calls) == 2
    assert client.clock.slept > 0  # type: ignore[attr-defined]


@responses.activate
def test_retries_run_out(client: Client) -> None:
    responses.get(f"{KB}/d1", status=503, json={"detail": "busy"})
    with pytest.raises(ServerError):
        client.get_document("d1")
    assert len(responses.calls) == client.policy.max_attempts


@responses.activate
def test_429_everywhere_gives_rate_limited(client: Client) -> None:
    responses.get(
        f"{KB}/d1", status=429, json={"detail": {"status": "system_busy", "message": "x"}}
    )
    with pytest.raises(RateLimited):
        client.get_document("d1")


@responses.activate
def test_create_after_ambiguous_500_looks_before_creating_again(client: Client) -> None:
    responses.post(f"{KB}/text", status=500, body="Internal Server Error")
    responses.get(
        KB,
        json={
            "documents": [{"id": "d9", "name": "kb-sync:a.md#0123456789abcdef"}],
            "has_more": False,
            "next_cursor": None,
        },
    )
    got = client.create_text("kb-sync:a.md#0123456789abcdef", "text")
    assert got["id"] == "d9"
    posts = [c for c in responses.calls if c.request.method == "POST"]
    assert len(posts) == 1  # found it: no second create


@responses.activate
def test_create_after_connection_error_creates_when_absent(client: Client) -> None:
    responses.post(f"{KB}/text", body=requests.ConnectionError("reset"))
    responses.get(KB, json={"documents": [], "has_more": False, "next_cursor": None})
    responses.post(f"{KB}/text", json={"id": "d2", "name": "n"})
    assert client.create_text("n", "text")["id"] == "d2"


@responses.activate
def test_listing_pages_with_cursor_and_prefix(client: Client) -> None:
    responses.get(
        KB,
        json={
            "documents": [{"id": "1", "name": "kb-sync:a.md#0"}],
            "has_more": True,
            "next_cursor": "c1",
        },
    )
    responses.get(
        KB,
        json={
            "documents": [{"id": "2", "name": "kb-sync:b.md#0"}],
            "has_more": False,
            "next_cursor": None,
        },
    )
    assert [d["id"] for d in client.list_documents(search="kb-sync:")] == ["1", "2"]
    first, second = (str(c.request.url) for c in responses.calls)
    assert "page_size=100" in first and "search=kb-sync%3A" in first
    assert "cursor=c1" in second


@responses.activate
def test_requests_conform_to_the_spec(client: Client) -> None:
    responses.post(f"{KB}/text", json={"id": "d1", "name": "n"})
    responses.post(f"{KB}/d1/rag-index", json={"id": "i", "status": "created"})
    responses.patch(f"{BASE}/v1/convai/agents/a1", json={})
    responses.delete(f"{KB}/d1", json={})
    client.create_text("n", "hello")
    client.compute_index("d1", "multilingual_e5_large_instruct")
    client.patch_agent_kb("a1", [{"type": "text", "name": "n", "id": "d1", "usage_mode": "auto"}])
    client.delete_document("d1", force=True)
    for c in responses.calls:
        body = json.loads(c.request.body) if c.request.body else None
        assert validate_request(str(c.request.method), str(c.request.url), body)


@responses.activate
def test_exchanges_are_recorded_without_headers() -> None:
    seen: list[dict[str, object]] = []
    c = Client(BASE, CANARY_KEY, clock=FakeClock(), on_exchange=seen.append)
    responses.get(f"{KB}/d1", json={"id": "d1", "echo": CANARY_KEY})
    c.get_document("d1")
    assert seen and CANARY_KEY not in json.dumps(seen)


@responses.activate
def test_an_error_without_a_code_reads_plainly(client: Client) -> None:
    responses.get(f"{KB}/d1", status=404, body="Not Found")
    with pytest.raises(SyncError) as e:
        client.get_document("d1")
    assert str(e.value).startswith("HTTP 404: "), str(e.value)
