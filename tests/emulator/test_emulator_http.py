"""The HTTP front on 127.0.0.1, RemoteEmulator, and ``python -m sync.emulator``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from sync.clock import FakeClock
from sync.emulator import Backend, FaultRule, RemoteEmulator, rate_limited, serve
from sync.emulator.server import EmulatorServer
from tests.emulator.emu_helpers import KEY, LONG, MODEL, Api

pytestmark = pytest.mark.http
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(backend: Backend) -> Iterator[EmulatorServer]:
    with serve(backend) as srv:
        yield srv


def test_server_serves_the_api(server: EmulatorServer, backend: Backend) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    api = Api(server.url)
    doc = api.create(name="over http")
    r = api("GET", f"/knowledge-base/{doc}/content")
    # no charset, as the real one is assumed to answer: the bytes are UTF-8 all the same
    assert r.headers["Content-Type"] == "text/html" and r.content.decode("utf-8") == LONG
    assert api("GET", "/knowledge-base").json()["documents"][0]["id"] == doc
    assert Api(server.url, None)("GET", "/knowledge-base").status_code == 401
    assert "request-id" in r.headers


def test_server_drop_after_commit_really_drops(server: EmulatorServer, backend: Backend) -> None:
    backend.add_fault(FaultRule(method="POST", path="/knowledge-base/text", drop_after_commit=True))
    api = Api(server.url)
    with pytest.raises(requests.exceptions.ConnectionError):
        api("POST", "/knowledge-base/text", json={"text": LONG, "name": "committed"})
    assert [d.name for d in backend.docs.values()] == ["committed"]
    assert api("GET", "/knowledge-base").status_code == 200  # the server is still fine


def test_server_concurrent_uploads(server: EmulatorServer, backend: Backend) -> None:
    api = Api(server.url)

    def upload(i: int) -> int:
        r = requests.post(
            f"{server.url}/v1/convai/knowledge-base/text",
            json={"text": LONG, "name": f"doc {i}"},
            headers={"xi-api-key": KEY},
            timeout=10,
        )
        return r.status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(upload, range(40))) == {200}
    assert len(backend.docs) == 40 and len(backend.calls) == 40
    assert len(api("GET", "/knowledge-base", params={"page_size": 100}).json()["documents"]) == 40


def test_server_rate_limit_with_retry_after(server: EmulatorServer, backend: Backend) -> None:
    backend.add_fault(rate_limited(retry_after=1, path="/knowledge-base$"))
    r = Api(server.url)("GET", "/knowledge-base")
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert r.json()["detail"]["code"] == "concurrent_limit_exceeded"


def test_remote_emulator_control_endpoints(server: EmulatorServer, clock: FakeClock) -> None:
    remote = RemoteEmulator(server.url)
    api = Api(server.url)
    agent = remote.seed_agent(name="Remote agent", rag_enabled=True)
    doc = remote.seed_document("Seeded", LONG, attach_to=[agent])
    assert remote.agent_kb(agent) == [
        {"type": "text", "name": "Seeded", "id": doc, "usage_mode": "auto"}
    ]
    assert remote.index_status(doc, MODEL) == "succeeded"
    version = remote.agent_version(agent)
    assert api("GET", f"/agents/{agent}").json()["name"] == "Remote agent"

    remote.set_index_behaviour("Later", "stuck")
    later = api.create(name="Later doc")
    api.index(later)
    t = remote.advance(60)
    assert t == clock.now()
    assert remote.index_status(later, MODEL) == "processing"

    remote.linger(1)
    assert api.set_kb(agent, []).status_code == 200
    assert remote.agent_version(agent) == version + 1
    assert api("DELETE", f"/knowledge-base/{doc}").status_code == 400
    assert api("DELETE", f"/knowledge-base/{doc}").status_code == 200

    remote.set_quota(10)
    assert api("GET", "/knowledge-base/rag-index").json()["total_max_bytes"] == 10
    remote.add_fault(FaultRule(path="/knowledge-base$", status=503, times=None))
    assert api("GET", "/knowledge-base").status_code == 503
    remote.clear_faults()
    assert api("GET", "/knowledge-base").status_code == 200

    calls = remote.calls
    assert calls and calls[-1].path == "/v1/convai/knowledge-base" and calls[-1].status == 200
    assert not any(c.path.startswith("/_emulator") for c in calls)
    remote.clear_calls()
    assert remote.calls == []
    assert set(remote.docs) == {later}
    remote.reset()
    assert remote.state()["documents"] == [] and remote.state()["agents"] == []


def test_control_errors_are_400(server: EmulatorServer) -> None:
    r = requests.post(f"{server.url}/_emulator/documents", json={"name": "x"}, timeout=5)
    assert r.status_code == 400
    r = requests.post(f"{server.url}/_emulator/faults", json={"nope": 1}, timeout=5)
    assert r.status_code == 400
    assert requests.get(f"{server.url}/_emulator/nothing", timeout=5).status_code == 404
    one = {"name": "x", "text": LONG, "attach_to": "agent_x"}  # a string, not a list
    r = requests.post(f"{server.url}/_emulator/documents", json=one, timeout=5)
    assert r.status_code == 400
    assert r.json() == {"error": 'attach_to must be a list of ids (e.g. ["agent_..."])'}


def test_python_m_sync_emulator_subprocess() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sync.emulator", "--port", "0", "--index-seconds", "0.5"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(3)]
        assert all(ln.startswith("export ") for ln in lines)  # copy-paste into a shell
        values = dict(ln.removeprefix("export ").split("=", 1) for ln in lines)
        assert list(values) == ["ELEVENLABS_BASE_URL", "ELEVENLABS_API_KEY", "ELEVENLABS_AGENT_ID"]
        assert values["ELEVENLABS_BASE_URL"].startswith("http://127.0.0.1:")
        key, agent = values["ELEVENLABS_API_KEY"], values["ELEVENLABS_AGENT_ID"]
        assert key.startswith("sk_emu_") and len(key) == len("sk_emu_") + 40
        assert agent.startswith("agent_") and len(agent) == len("agent_") + 28
        r = requests.get(
            f"{values['ELEVENLABS_BASE_URL']}/v1/convai/agents/{agent}",
            headers={"xi-api-key": key},
            timeout=5,
        )
        assert r.status_code == 200
        body = r.json()
        assert body["name"] == "Staging support agent"
        assert body["conversation_config"]["agent"]["prompt"]["rag"]["enabled"] is True
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()


def test_the_emulator_writes_its_settings_to_an_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / "emulator.env"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sync.emulator", "--port", "0", "--env-file", str(env_file)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        printed = [proc.stdout.readline().strip() for _ in range(3)]
        assert env_file.read_text().splitlines() == printed  # `. emulator.env` sets them
        assert oct(env_file.stat().st_mode & 0o777) == "0o600"  # it holds a key
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_client_gone_mid_answer_is_no_traceback_other_errors_still_are(
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = serve(Backend(api_key=None))
    try:
        for exc, shown in ((BrokenPipeError(), False), (ConnectionResetError(), False)):
            try:
                raise exc
            except OSError:
                server._httpd.handle_error(None, ("127.0.0.1", 1))
            assert ("Traceback" in capsys.readouterr().err) is shown
        try:
            raise ValueError("a bug in a handler")
        except ValueError:
            server._httpd.handle_error(None, ("127.0.0.1", 1))
        assert "ValueError: a bug in a handler" in capsys.readouterr().err
    finally:
        server.shutdown()
