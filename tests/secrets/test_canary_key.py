"""The canary API key never leaves the process: not in logs (human or JSON, DEBUG, and the raw
records any other handler would see), stdout/stderr, run records, exception text, recorded
exchanges or ``repr(Settings)``; in-process and in a ``python -m sync`` subprocess."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import pytest

from sync.cli import run
from sync.client import Client
from sync.clock import FakeClock, SystemClock
from sync.config import load_settings
from sync.emulator import Backend, FaultRule, emulate, serve, server_error
from sync.errors import ApiError
from tests.canary import CANARY_KEY

pytestmark = pytest.mark.safety

ROOT = Path(__file__).resolve().parents[2]
LONG = "Refunds are paid within fourteen days of the return being received.\n\n" * 10


def assert_clean(where: str, text: str) -> None:
    assert CANARY_KEY not in text, f"canary key in {where}"
    # also a partial leak (a key cut to fit a column, or base64 of it would be caught elsewhere)
    assert CANARY_KEY[:16] not in text, f"canary key prefix in {where}"


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    clock = FakeClock()
    b = Backend(api_key=CANARY_KEY, clock=clock, index_seconds=3.0, seed=11)
    agent = b.seed_agent()
    old = b.seed_document("kb-sync:old.md#0123456789abcdef", LONG + "old\n", attach_to=[agent])
    folder = tmp_path / "q"
    folder.mkdir()
    (folder / "a.md").write_text(LONG, "utf-8")
    (folder / "small.md").write_text("tiny", "utf-8")
    env = {
        "ELEVENLABS_API_KEY": CANARY_KEY,
        "ELEVENLABS_AGENT_ID": agent,
        "KB_SYNC_NAMESPACE": "kb-sync",
        "KB_SYNC_RECORD_DIR": str(tmp_path / "runs"),  # the env given is the only source
    }
    return {"b": b, "clock": clock, "agent": agent, "dir": folder, "env": env, "old": old}


def scan_records(tmp_path: Path) -> int:
    n = 0
    for p in (tmp_path / "runs").glob("*"):
        assert_clean(f"run record {p.name}", p.read_text("utf-8"))
        n += 1
    return n


@pytest.mark.parametrize("fmt", ["human", "json"])
def test_full_push_and_rollback_leak_nothing(
    world: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    fmt: str,
) -> None:
    exchanges: list[dict[str, Any]] = []
    caplog.set_level(logging.DEBUG)  # every logger, urllib3's included
    b, env, clock = world["b"], world["env"], world["clock"]
    b.add_fault(server_error(503, method="POST", path=r"/knowledge-base/text$"))
    b.add_fault(FaultRule(method="PATCH", path="/agents/", drop_after_commit=True))
    common = ["--log-format", fmt, "-v"]
    with emulate(b):
        for argv in (
            ["push", "--dir", str(world["dir"]), "--allow-mass-delete", *common],
            [
                "push",
                "--dir",
                str(world["dir"]),
                "--strict-hash",
                "--json",
                "--allow-mass-delete",
                *common,
            ],
            ["status", "--json", *common],
            ["verify", "--dir", str(world["dir"]), *common],
            ["rollback", *common],
        ):
            code = run(argv, env=env, clock=clock, on_exchange=exchanges.append)
            assert code in (0, 3, 6), (argv, code)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert_clean("stdout", out)
    assert_clean("stderr (log lines)", err)
    assert err.count("\n") > 20  # the logs really were there
    for rec in caplog.records:
        assert_clean(
            f"log record {rec.name}",
            rec.getMessage()
            + json.dumps(getattr(rec, "fields", {}), default=str, ensure_ascii=False),
        )
    assert exchanges
    assert_clean("exchanges", json.dumps(exchanges, ensure_ascii=False, default=str))
    assert scan_records(tmp_path) >= 2


def test_settings_and_client_repr() -> None:
    s = load_settings({"ELEVENLABS_API_KEY": CANARY_KEY, "ELEVENLABS_AGENT_ID": "agent_x"})
    assert_clean("repr(Settings)", repr(s))
    assert_clean("str(Settings)", str(s))
    c = Client("https://api.elevenlabs.io", CANARY_KEY)
    assert_clean("repr(Client)", repr(c))


def _raw_error(fn: Any) -> str:
    with pytest.raises(ApiError) as info:
        fn()
    exc = info.value
    return "".join([str(exc), repr(exc), repr(exc.body), *traceback.format_exception(exc)])


@pytest.fixture
def no_redaction(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exception text must be clean by construction, not only because redaction caught it."""
    monkeypatch.setattr("sync.log._SECRETS", set())


@pytest.mark.usefixtures("no_redaction")
def test_exception_text_401_500_and_connection_error() -> None:
    clock = FakeClock()
    wrong = Backend(api_key="another-key", clock=clock)  # the canary is sent and refused
    agent = wrong.seed_agent()
    with emulate(wrong):
        text = _raw_error(
            lambda: Client("https://api.elevenlabs.io", CANARY_KEY, clock=clock).get_agent(agent)
        )
    assert "401" in text
    assert_clean("401 exception", text)

    b = Backend(api_key=CANARY_KEY, clock=clock)
    agent = b.seed_agent()
    b.add_fault(server_error(500, times=None))
    with emulate(b):
        text = _raw_error(
            lambda: Client("https://api.elevenlabs.io", CANARY_KEY, clock=clock).get_agent(agent)
        )
    assert "500" in text and len(b.calls) == 6  # retried, then gave up
    assert_clean("500-after-retries exception", text)

    c = Client("http://127.0.0.1:9", CANARY_KEY, clock=clock)  # nothing listens there
    text = _raw_error(lambda: c.get_agent(agent))
    assert "connection refused" in text and "ELEVENLABS_BASE_URL" in text
    assert_clean("connection error exception", text)


def test_a_server_echoing_the_key_is_redacted(
    world: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Some proxies echo request headers in error bodies: the key then reaches the client."""
    b = world["b"]
    body = {"detail": {"status": "bad_request", "message": f"header xi-api-key={CANARY_KEY}"}}
    b.add_fault(FaultRule(method="POST", path=r"/rag-index$", status=400, body=body, times=None))
    exchanges: list[dict[str, Any]] = []
    with emulate(b):
        code = run(
            [
                "push",
                "--dir",
                str(world["dir"]),
                "--log-format",
                "json",
                "-v",
                "--allow-mass-delete",
            ],
            env=world["env"],
            clock=world["clock"],
            on_exchange=exchanges.append,
        )
    assert code in (1, 3)
    out, err = capsys.readouterr()
    assert "xi-api-key=***" in err  # it did come back, and was redacted
    assert_clean("stderr", err)
    assert_clean("stdout", out)
    assert_clean("exchanges", json.dumps(exchanges, ensure_ascii=False))
    scan_records(tmp_path)


@pytest.mark.http
def test_subprocess_cli_against_loopback(world: dict[str, Any], tmp_path: Path) -> None:
    b = world["b"]
    b.clock = SystemClock()
    b.index_seconds = 0.0
    b.add_fault(server_error(502, method="GET", path="/agents/"))
    b.add_fault(FaultRule(method="POST", path=r"/knowledge-base/text$", drop_after_commit=True))
    with serve(b) as srv:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(ROOT),
            "ELEVENLABS_BASE_URL": srv.url,
            "KB_SYNC_RECORD_DIR": str(tmp_path / "runs"),
            **world["env"],
        }
        outputs = []
        for argv in (
            [
                "push",
                "--dir",
                str(world["dir"]),
                "--log-format",
                "json",
                "-v",
                "--index-wait",
                "5",
                "--allow-mass-delete",
            ],
            ["status", "-v"],
            ["push", "--dir", str(world["dir"]), "--json", "--strict-hash"],
        ):
            p = subprocess.run(
                [sys.executable, "-m", "sync", *argv],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert p.returncode == 0, p.stderr
            outputs.append(p.stdout + p.stderr)
    assert "http.retry" in outputs[0]  # the fault was seen and logged
    for i, text in enumerate(outputs):
        assert_clean(f"subprocess run {i}", text)
    assert scan_records(tmp_path) >= 1
