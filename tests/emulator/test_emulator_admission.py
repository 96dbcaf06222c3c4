"""The server's in-flight limit (429 ``too_many_concurrent_requests``) and a 429 storm."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from sync.emulator import Backend, FaultRule, RemoteEmulator, serve, storm
from sync.emulator.admission import Admission
from sync.emulator.server import EmulatorServer
from tests.emulator.emu_helpers import Api


@pytest.fixture
def server(backend: Backend) -> Iterator[EmulatorServer]:
    with serve(backend) as srv:
        yield srv


def until(cond: Callable[[], bool], what: str) -> None:
    """Wait for another thread's request to reach the server (bounded; not a timing)."""
    for _ in range(1000):
        if cond():
            return
        time.sleep(0.005)
    raise AssertionError(f"never: {what}")


def test_admission_counts_admitted_requests_and_refuses_over_the_limit() -> None:
    adm = Admission()
    adm.set_limit(2)
    with adm.slot() as a, adm.slot() as b, adm.slot() as c, adm.slot(counted=False) as ctl:
        assert (a, b, c, ctl) == (True, True, False, True)
        assert adm.in_flight == 2
    assert adm.state() == {"limit": 2, "in_flight": 0, "peak": 2, "refused": 1}
    with pytest.raises(ValueError):
        adm.set_limit(0)


def test_a_request_over_the_limit_is_refused_with_the_real_body(
    server: EmulatorServer, backend: Backend
) -> None:
    remote = RemoteEmulator(server.url)
    remote.set_concurrency_limit(2)
    # two slow listings hold the two slots (the latency is the server's own, a real sleep)
    backend.add_fault(FaultRule(method="GET", path="/knowledge-base$", times=2, latency=0.5))
    api = Api(server.url)
    with ThreadPoolExecutor(2) as pool:
        slow = [pool.submit(api, "GET", "/knowledge-base") for _ in range(2)]
        until(lambda: remote.state()["concurrency"]["in_flight"] == 2, "two in flight")
        refused = api("POST", "/knowledge-base/text", json={"text": "x" * 600, "name": "n"})
        assert [f.result().status_code for f in slow] == [200, 200]
    assert refused.status_code == 429
    assert "Retry-After" not in refused.headers
    detail = refused.json()["detail"]
    assert detail["status"] == "too_many_concurrent_requests"
    assert detail["code"] == "concurrent_limit_exceeded"
    assert detail["request_id"] == refused.headers["request-id"]
    assert backend.docs == {}  # refused: not handled
    assert api("GET", "/knowledge-base").status_code == 200  # slots are given back
    logged = [c for c in backend.calls if c.status == 429]
    assert len(logged) == 1 and logged[0].fault and logged[0].method == "POST"
    assert remote.state()["concurrency"] == {"limit": 2, "in_flight": 0, "peak": 2, "refused": 1}


def test_control_requests_never_count_and_the_limit_can_be_lifted(
    server: EmulatorServer, backend: Backend
) -> None:
    remote = RemoteEmulator(server.url)
    remote.set_concurrency_limit(1)
    backend.add_fault(FaultRule(method="GET", path="/knowledge-base$", times=1, latency=0.5))
    api = Api(server.url)
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(api, "GET", "/knowledge-base")
        until(lambda: remote.state()["concurrency"]["in_flight"] == 1, "one in flight")
        assert remote.state()["concurrency"]["limit"] == 1  # the control plane still answers
        remote.set_concurrency_limit(None)
        assert api("GET", "/knowledge-base").status_code == 200
        assert slow.result().status_code == 200
    assert not [c for c in backend.calls if c.status == 429]


def test_bad_limits_are_400(server: EmulatorServer) -> None:
    for body in ({}, {"limit": 0}, {"limit": "4"}, {"limit": True}, {"limit": 2, "x": 1}):
        r = requests.post(f"{server.url}/_emulator/concurrency-limit", json=body, timeout=10)
        assert r.status_code == 400, body


def test_in_process_requests_one_after_another_are_never_refused(
    api: Api, backend: Backend
) -> None:
    backend.set_concurrency_limit(1)
    for _ in range(5):
        assert api("GET", "/knowledge-base").status_code == 200
    assert backend.state()["concurrency"]["peak"] == 1
    backend.reset()
    assert backend.state()["concurrency"]["limit"] is None


def test_a_refused_request_still_costs_the_round_trip(backend: Backend) -> None:
    backend.add_fault(FaultRule(times=None, latency=0.02))
    resp = backend.handle("GET", "/v1/convai/knowledge-base", over_limit=True)
    assert resp.status == 429 and resp.latency == 0.02
    assert backend.faults[0].times is None and backend.faults[0].hits == 0


def test_a_storm_is_k_consecutive_429s_then_normal_answers(api: Api, backend: Backend) -> None:
    backend.add_fault(storm(3))
    statuses = [api("GET", "/knowledge-base").status_code for _ in range(5)]
    assert statuses == [429, 429, 429, 200, 200]
    body = backend.calls[0].response_json["detail"]
    assert body["code"] == "concurrent_limit_exceeded"


def test_the_emulator_command_takes_a_concurrency_limit() -> None:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sync.emulator", "--port", "0", "--concurrency-limit", "3"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip().split("=", 1)[1]
        assert RemoteEmulator(url).state()["concurrency"]["limit"] == 3
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    bad = subprocess.run(
        [sys.executable, "-m", "sync.emulator", "--concurrency-limit", "0"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "--concurrency-limit" in bad.stderr
