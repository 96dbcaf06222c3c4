"""A server that goes away mid-run: the first request that meets a refused connection spends
its attempts, the later ones of the same run fail after one, and the index wait ends at its
deadline, retries included. Counted in attempts and requests, not in time."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import requests
import responses

from sync.client import Client
from sync.clock import FakeClock
from sync.emulator import Backend, FaultRule
from sync.errors import ExitCode, ServerError, TransportError
from tests.canary import CANARY_KEY

from .conftest import Kit, para

BASE = "https://api.elevenlabs.io"
KB = f"{BASE}/v1/convai/knowledge-base"
REFUSED = (
    "HTTPSConnectionPool(host='api.elevenlabs.io', port=443): Max retries exceeded "
    "(Caused by NewConnectionError('Failed to establish a new connection: [Errno 111] "
    "Connection refused'))"
)


def refused() -> requests.ConnectionError:
    return requests.ConnectionError(REFUSED)


@pytest.fixture
def client() -> Client:
    return Client(BASE, CANARY_KEY, clock=FakeClock())


@responses.activate
def test_after_one_request_exhausted_on_refused_the_next_fail_after_one_attempt(
    client: Client,
) -> None:
    responses.get(f"{KB}/d0", json={"id": "d0"})  # the server answered: the URL is right
    responses.get(f"{KB}/d1", body=refused())
    responses.get(f"{KB}/d2", body=refused())
    responses.get(f"{KB}/d3", body=refused())
    client.get_document("d0")
    with pytest.raises(TransportError, match="ELEVENLABS_BASE_URL"):
        client.get_document("d1")
    with pytest.raises(TransportError, match="ELEVENLABS_BASE_URL"):
        client.get_document("d2")
    with pytest.raises(TransportError):
        client.delete_document("d3")
    per_path = [c.request.path_url for c in responses.calls]
    assert per_path.count("/v1/convai/knowledge-base/d1") == client.policy.max_attempts
    assert per_path.count("/v1/convai/knowledge-base/d2") == 1
    assert per_path.count("/v1/convai/knowledge-base/d3") == 1


@responses.activate
def test_a_server_that_answers_again_gets_the_full_budget_again(client: Client) -> None:
    responses.get(f"{KB}/d0", json={"id": "d0"})
    responses.get(f"{KB}/d1", body=refused())
    client.get_document("d0")
    with pytest.raises(TransportError):
        client.get_document("d1")
    client.get_document("d0")  # it is back
    with pytest.raises(TransportError):
        client.get_document("d1")
    per_path = [c.request.path_url for c in responses.calls]
    assert per_path.count("/v1/convai/knowledge-base/d1") == 2 * client.policy.max_attempts


@responses.activate
def test_5xx_keep_their_attempts_after_the_server_was_gone(client: Client) -> None:
    responses.get(f"{KB}/d0", json={"id": "d0"})
    responses.get(f"{KB}/d1", body=refused())
    responses.get(f"{KB}/d2", status=503, json={"detail": "busy"})
    client.get_document("d0")
    with pytest.raises(TransportError):
        client.get_document("d1")
    with pytest.raises(ServerError):
        client.get_document("d2")  # an answer: the server is there, busy
    per_path = [c.request.path_url for c in responses.calls]
    assert per_path.count("/v1/convai/knowledge-base/d2") == client.policy.max_attempts


@responses.activate
def test_the_first_request_of_a_run_still_fails_at_once(client: Client) -> None:
    responses.get(f"{KB}/d1", body=refused())
    with pytest.raises(TransportError, match="connection refused"):
        client.get_document("d1")
    assert len(responses.calls) == 1


@responses.activate
def test_a_request_with_an_end_is_not_retried_past_it(client: Client) -> None:
    responses.post(f"{KB}/rag-index", status=503, json={"detail": "busy"})
    with pytest.raises(ServerError):
        client.compute_indexes(["d1"], "m", until=client.clock.now())
    assert len(responses.calls) == 1  # a retry would wait past the end


class GoneAfter:
    """The server goes away (every later connection refused) at the request ``trigger``
    picks; ``attempts`` counts what reached the port after that, by method and path."""

    def __init__(self, backend: Backend, trigger: Callable[[str, str], bool]) -> None:
        self.backend, self.trigger, self.gone = backend, trigger, False
        self.attempts: list[tuple[str, str]] = []
        self._orig = backend.handle
        backend.handle = self._handle  # type: ignore[method-assign]

    def _handle(self, method: str, path: str, *args: Any, **kw: Any) -> Any:
        if not path.startswith("/_emulator") and (self.gone or self.trigger(method, path)):
            self.gone = True
            self.attempts.append((method, path))
            raise refused()
        return self._orig(method, path, *args, **kw)


def test_a_server_gone_during_the_index_wait_is_reported_without_spending_every_budget(
    kit: Kit,
) -> None:
    kit.write("a.md", para("a"))
    assert kit.push().code == 0
    kit.write("a.md", para("a2"))
    kit.backend.set_index_behaviour("kb-sync:a.md", "stuck")  # the wait goes on: polls
    seen = {"rag": 0}

    def second_poll(method: str, path: str) -> bool:
        if method == "POST" and path == "/v1/convai/knowledge-base/rag-index":
            seen["rag"] += 1
        return seen["rag"] >= 3  # killed during the index wait

    gone = GoneAfter(kit.backend, second_poll)
    r = kit.push("--index-wait", "30")
    assert r.code == ExitCode.ERROR, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("kb-sync: error:") and "ELEVENLABS_BASE_URL" in last
    assert "Traceback" not in r.stderr
    # one request spent its attempts; every later one made one
    agent = f"/v1/convai/agents/{kit.agent_id}"
    assert gone.attempts.count(("GET", agent)) == 1  # the re-read before the PATCH
    lease_releases = [a for a in gone.attempts if a[0] == "DELETE"]
    assert len(lease_releases) == 1
    retried = re.findall(r"http\.transport_error .*attempt=(\d+)", r.stderr)
    assert retried.count("2") == 1, retried  # only the first refused request was retried
    # the index wait ended at its deadline, its retries included
    waited = [float(w) for w in re.findall(r"index\.progress .*waited=([\d.]+)", r.stderr)]
    assert waited and max(waited) <= 30.0, waited
    assert not any(a[0] == "PATCH" for a in gone.attempts)  # nothing attached


def test_index_polls_answered_5xx_are_not_retried_past_the_index_wait(kit: Kit) -> None:
    """A server that answers every poll 503 during the wait: each poll keeps its retries, but
    none waits past the index deadline (the wait's last round sends one attempt)."""
    kit.write("a.md", para("a"))
    assert kit.push().code == 0
    kit.write("a.md", para("a2"))
    kit.backend.set_index_behaviour("kb-sync:a.md", "stuck")
    seen = {"rag": 0}

    def busy_from_the_third(backend, call):  # type: ignore[no-untyped-def]
        if call.method == "POST" and call.path == "/v1/convai/knowledge-base/rag-index":
            seen["rag"] += 1
            if seen["rag"] == 2:
                backend.add_fault(
                    FaultRule("POST", r"/knowledge-base/rag-index$", times=None, status=503)
                )

    kit.backend.after_request.append(busy_from_the_third)
    r = kit.push("--index-wait", "30")
    kit.backend.after_request.clear()
    kit.backend.clear_faults()
    assert r.code == ExitCode.PARTIAL, r.stderr  # the old version is kept
    retried = [c for c in kit.backend.calls if c.status == 503]
    assert len(retried) > 1  # the 503s were retried, within the wait
    waited = [float(w) for w in re.findall(r"index\.progress .*waited=([\d.]+)", r.stderr)]
    assert waited and max(waited) <= 30.0, waited


def test_a_server_gone_for_good_ends_a_long_index_wait_early(kit: Kit) -> None:
    """--index-wait 180 with the server gone: the wait ends GONE_GRACE after a request
    refused every attempt (a restart within it is found again), not at 180 s."""
    kit.write("a.md", para("a"))
    assert kit.push().code == 0
    kit.write("a.md", para("a2"))
    kit.backend.set_index_behaviour("kb-sync:a.md", "stuck")
    seen = {"rag": 0}

    def third_poll(method: str, path: str) -> bool:
        if method == "POST" and path == "/v1/convai/knowledge-base/rag-index":
            seen["rag"] += 1
        return seen["rag"] >= 3

    GoneAfter(kit.backend, third_poll)
    start = kit.clock.now()
    r = kit.push("--index-wait", "180")
    assert r.code == ExitCode.ERROR, r.stderr
    assert "ELEVENLABS_BASE_URL" in r.stderr.strip().splitlines()[-1]
    assert "index.server_gone" in r.stderr
    assert kit.clock.now() - start < 90  # of the fake clock: not the 180 s wait
