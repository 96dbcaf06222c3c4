"""Adaptive concurrency against a server that limits requests in flight, and 429 storms.

Over loopback (kb-sync a subprocess, the emulator a threaded HTTP server: requests really
overlap) and in-process (a FakeClock: the back-offs take no time). No timing is asserted:
exit codes, what the agent ends with, and the 429 answers the emulator logged.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import responses

from sync.client import Client
from sync.clock import FakeClock
from sync.emulator import FaultRule, storm
from sync.errors import RateLimited, ServerError
from sync.retry import RetryPolicy, run_budget
from tests.canary import CANARY_KEY

from .conftest import Kit, Served, para

ROOT = Path(__file__).resolve().parents[2]
BASE = "https://api.elevenlabs.io"
KB = f"{BASE}/v1/convai/knowledge-base"
LIMITED = {
    "detail": {
        "status": "too_many_concurrent_requests",
        "code": "concurrent_limit_exceeded",
        "message": "Too many concurrent requests are being made.",
    }
}


def events(stderr: str, name: str) -> list[dict[str, object]]:
    found = []
    for line in stderr.splitlines():
        if line.startswith("{") and f'"{name}"' in line:
            data = json.loads(line)
            if data.get("event") == name:
                found.append(data)
    return found


@pytest.mark.http
def test_40_new_docs_at_concurrency_16_under_a_limit_of_4(loopback: Served, tmp_path: Path) -> None:
    backend, env = loopback.backend, loopback.env
    backend.set_concurrency_limit(4)
    # the bench's per-request latency: what makes requests overlap at the server
    backend.add_fault(FaultRule(times=None, latency=0.02))
    docs = tmp_path / "quarters"
    docs.mkdir()
    for i in range(40):
        (docs / f"doc-{i:02d}.md").write_text(para(f"d{i}"), encoding="utf-8")
    argv = ["push", "--dir", str(docs), "--concurrency", "16", "--index-wait", "120"]
    proc = subprocess.run(
        [sys.executable, "-m", "sync", "--log-format", "json", *argv],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    kb = backend.agent_kb(env["ELEVENLABS_AGENT_ID"])
    assert sorted(e["name"].split(":", 1)[1].split("#")[0] for e in kb) == sorted(
        f"doc-{i:02d}.md" for i in range(40)
    )
    refused = [c for c in backend.calls if c.status == 429]
    assert 0 < len(refused) < 60  # the limit was met, and learnt
    assert backend.state()["concurrency"]["peak"] <= 4
    (settled,) = events(proc.stderr, "concurrency.settled")
    assert settled["ceiling"] == 16 and 1 <= int(str(settled["limit"])) <= 16
    assert settled["limited"] == len(refused)
    assert CANARY_KEY not in proc.stdout + proc.stderr


def test_a_storm_of_30_429s_ends_exit_0_within_the_deadline(kit: Kit) -> None:
    for i in range(5):
        kit.write(f"s{i}.md", para(f"s{i}"))
    kit.backend.add_fault(storm(30))
    start = kit.clock.now()
    r = kit.push("--concurrency", "16")
    assert r.code == 0, r.stderr[-3000:]
    assert len(kit.managed_kb()) == 5
    assert sum(1 for c in kit.backend.calls if c.status == 429) == 30
    assert kit.clock.now() - start < run_budget(RetryPolicy(), 180.0)  # the default index wait
    assert "concurrency.settled" in r.stderr


def test_a_storm_on_uploads_never_creates_a_document_twice(kit: Kit) -> None:
    for i in range(4):
        kit.write(f"u{i}.md", para(f"u{i}"))
    kit.backend.add_fault(storm(30, method="POST", path=r"/knowledge-base/text$"))
    r = kit.push("--concurrency", "8")
    assert r.code == 0, r.stderr[-3000:]
    names = [d.name for d in kit.managed_docs().values()]
    assert len(names) == len(set(names)) == 4


@responses.activate
def test_429s_do_not_use_up_the_attempt_budget() -> None:
    client = Client(BASE, CANARY_KEY, clock=FakeClock())
    for _ in range(client.policy.max_attempts * 3):
        responses.get(f"{KB}/d1", status=429, json=LIMITED)
    responses.get(f"{KB}/d1", json={"id": "d1"})
    assert client.get_document("d1") == {"id": "d1"}
    assert len(responses.calls) == client.policy.max_attempts * 3 + 1
    assert client.limiter.state.decreases >= 1


@responses.activate
def test_429_forever_ends_at_the_run_deadline() -> None:
    clock = FakeClock()
    client = Client(BASE, CANARY_KEY, clock=clock)
    responses.get(f"{KB}/d1", status=429, json=LIMITED)
    with pytest.raises(RateLimited):
        client.get_document("d1")
    assert clock.now() <= client.deadline
    assert len(responses.calls) < client.policy.max_limited


@responses.activate
def test_5xx_after_429s_still_has_its_bounded_budget() -> None:
    client = Client(BASE, CANARY_KEY, clock=FakeClock())
    for _ in range(5):
        responses.get(f"{KB}/d1", status=429, json=LIMITED)
    responses.get(f"{KB}/d1", status=503, json={"detail": "busy"})
    with pytest.raises(ServerError):
        client.get_document("d1")
    assert len(responses.calls) == 5 + client.policy.max_attempts


@responses.activate
def test_retry_after_is_honoured_then_over() -> None:
    clock = FakeClock()
    client = Client(BASE, CANARY_KEY, clock=clock)
    responses.get(f"{KB}/d1", status=429, json=LIMITED, headers={"Retry-After": "7"})
    responses.get(f"{KB}/d1", json={"id": "d1"})
    responses.get(f"{KB}/d2", json={"id": "d2"})
    start = clock.now()
    client.get_document("d1")
    assert clock.now() - start >= 7.0
    mark = clock.now()
    client.get_document("d2")  # the back-off has ended: no more waiting
    assert clock.now() == mark
