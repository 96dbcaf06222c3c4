"""The test-only time scale (``KB_SYNC_TEST_TIME_SCALE``): a clock that runs faster, never a
disabled one, and never against a server that is not on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sync import clock as clock_mod
from sync.clock import TIME_SCALE_VAR, ScaledClock, scaled_from_env
from sync.emulator import Backend
from sync.errors import ConfigError
from sync.testing import run_cli
from tests.canary import CANARY_KEY

from .conftest import Served, para

LOOPBACK = "http://127.0.0.1:8765"


class RealTime:
    """Stands in for the ``time`` module: real time moves only when told, sleeps are logged."""

    def __init__(self, t: float) -> None:
        self.t = t
        self.slept: list[float] = []

    def time(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def test_the_scaled_clock_runs_faster_and_sleeps_a_fraction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = RealTime(1_000.0)
    monkeypatch.setattr(clock_mod, "time", real)
    c = ScaledClock(0.05, 1_000.0)
    assert c.now() == 1_000.0
    c.sleep(10.0)  # ten seconds of the run's clock ...
    assert real.slept == [pytest.approx(0.5)]  # ... are half a second of real time
    assert c.now() == pytest.approx(1_010.0)
    real.t += 1.0  # one real second is twenty on the scaled clock
    assert c.now() == pytest.approx(1_030.0)
    c.sleep(0)
    c.sleep(-1)
    assert len(real.slept) == 1
    c.advance(5)  # a test server moves it forward, as SystemClock's offset
    assert c.now() == pytest.approx(1_035.0)


def test_the_env_value_gives_another_process_the_same_clock() -> None:
    c = ScaledClock(0.05, time.time())
    other = scaled_from_env({TIME_SCALE_VAR: c.env_value()}, LOOPBACK)
    assert other is not None
    assert (other.scale, other.origin) == (c.scale, c.origin)
    assert scaled_from_env({}, LOOPBACK) is None
    assert scaled_from_env({TIME_SCALE_VAR: " "}, LOOPBACK) is None


@pytest.mark.parametrize(
    "base_url", ["http://127.0.0.1:8765", "http://localhost:1", "http://[::1]:80"]
)
def test_loopback_servers_may_run_on_the_scale(base_url: str) -> None:
    assert scaled_from_env({TIME_SCALE_VAR: f"0.5@{time.time()}"}, base_url) is not None


@pytest.mark.parametrize(
    ("value", "base_url", "says"),
    [
        ("0.05@{now}", "https://api.elevenlabs.io", "is not loopback"),
        ("0.05@{now}", "https://127.0.0.1.example.com", "is not loopback"),
        ("0@{now}", LOOPBACK, "outside [0.01, 1]"),
        ("-0.5@{now}", LOOPBACK, "outside [0.01, 1]"),
        ("1.5@{now}", LOOPBACK, "outside [0.01, 1]"),  # it never makes a wait longer
        ("0.001@{now}", LOOPBACK, "outside [0.01, 1]"),
        ("nan@{now}", LOOPBACK, "is not <scale>@<origin seconds>"),
        ("inf@{now}", LOOPBACK, "is not <scale>@<origin seconds>"),
        ("0.05", LOOPBACK, "is not <scale>@<origin seconds>"),
        ("fast@{now}", LOOPBACK, "is not <scale>@<origin seconds>"),
        ("0.05@{old}", LOOPBACK, "not within a day of now"),
    ],
)
def test_anything_else_is_refused_with_the_fix(value: str, base_url: str, says: str) -> None:
    now = time.time()
    raw = value.format(now=now, old=now - 2 * 86_400)
    with pytest.raises(ConfigError) as e:
        scaled_from_env({TIME_SCALE_VAR: raw}, base_url)
    message = str(e.value)
    assert says in message and TIME_SCALE_VAR in message
    assert message.endswith(f"unset {TIME_SCALE_VAR} (it is for the test suite only)")


def test_a_push_to_the_real_api_with_the_scale_set_is_refused_before_any_request(
    tmp_path: Path,
) -> None:
    backend = Backend(api_key=CANARY_KEY, seed=3)
    agent = backend.seed_agent()
    env = {
        "ELEVENLABS_API_KEY": CANARY_KEY,
        "ELEVENLABS_AGENT_ID": agent,
        "KB_SYNC_RECORD_DIR": str(tmp_path / "runs"),
        TIME_SCALE_VAR: f"0.05@{time.time()}",
    }
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "a.md").write_text(para("a"), "utf-8")
    res = run_cli(["push", "--dir", str(tmp_path / "q")], env, backend=backend)
    assert res.code == 5
    assert res.stderr.strip().splitlines() == [
        f"kb-sync: error: {TIME_SCALE_VAR} is set but ELEVENLABS_BASE_URL "
        "(https://api.elevenlabs.io) is not loopback: the test-only time scale is never used "
        f"against a real server; unset {TIME_SCALE_VAR} (it is for the test suite only)"
    ]
    assert res.calls == ()


def test_the_index_deadline_still_ends_the_wait_on_the_scaled_clock(
    loopback: Served, tmp_path: Path
) -> None:
    """A subprocess on the loopback fixture's scaled clock waits out ``--index-wait 30`` of
    that clock for an index that never finishes, then keeps the agent as it was (exit 3)."""
    loopback.backend.set_index_behaviour("kb-sync:", "stuck")
    d = tmp_path / "quarters"
    d.mkdir()
    (d / "2025-Q1.md").write_text("# 2025-Q1\n\n" + para("q1"), "utf-8")
    p = subprocess.run(
        [sys.executable, "-m", "sync", "push", "--dir", str(d), "--index-wait", "30"],
        env={**loopback.env, "KB_SYNC_LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 3, p.stderr
    events = [json.loads(line) for line in p.stderr.splitlines() if line.startswith("{")]
    waited = [e["waited"] for e in events if e.get("event") == "index.progress"]
    assert len(waited) > 2 and waited[-1] >= 30  # polled, backed off, reached the deadline
    assert any("index still processing after 30s" in line for line in p.stderr.splitlines())
    assert loopback.backend.agent_kb(loopback.env["ELEVENLABS_AGENT_ID"]) == []
