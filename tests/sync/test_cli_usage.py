"""Usage and settings mistakes outside the sync's own options: the emulator subcommand, the
base URL's scheme, KB_SYNC_LOG_FORMAT. Each is one ``error:`` line naming the setting and the
fix, exit 5 (bad input), never a traceback or argparse's usage text."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sync.config import load_settings
from sync.errors import ConfigError
from sync.testing import run_cli

from .conftest import Kit, para

ROOT = Path(__file__).resolve().parents[2]
ENTRIES = {
    "kb-sync emulator": ["-m", "sync", "emulator"],
    "python -m sync.emulator": ["-m", "sync.emulator"],
}


def _one_line(stderr: str) -> str:
    assert "Traceback" not in stderr and "internal error" not in stderr and "usage:" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port something else listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield int(s.getsockname()[1])


@pytest.mark.parametrize("entry", sorted(ENTRIES))
def test_the_emulator_on_a_port_in_use_is_one_line_naming_the_port(
    entry: str, held_port: int
) -> None:
    p = subprocess.run(
        [sys.executable, *ENTRIES[entry], "--port", str(held_port)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    line = _one_line(p.stderr)
    assert p.returncode == 5, p.stderr
    assert line.startswith("kb-sync") and "error:" in line, line
    assert f"127.0.0.1:{held_port}" in line and "in use" in line and "--port" in line, line
    assert p.stdout == ""  # no export lines for a server that is not there


@pytest.mark.parametrize("value", ["abc", "70000", "-1"])
def test_a_bad_emulator_port_is_a_usage_error_exit_5_one_line(value: str) -> None:
    r = run_cli(["emulator", "--port", value], {})
    line = _one_line(r.stderr)
    assert r.code == 5, r.stderr
    # the house's one line: `kb-sync: error: <what>; <the fix>`
    assert line.startswith("kb-sync: error: argument --port:") and value in line, line
    assert line.endswith("; see kb-sync emulator --help"), line


def test_an_unknown_emulator_option_is_a_usage_error_like_the_other_commands() -> None:
    r = run_cli(["emulator", "--prot", "8791"], {})
    line = _one_line(r.stderr)
    assert r.code == 5 and "unrecognized arguments: --prot" in line, line


def test_a_base_url_without_a_scheme_says_the_scheme_is_missing() -> None:
    env = {"ELEVENLABS_API_KEY": "k" * 12, "ELEVENLABS_AGENT_ID": "agent_abc"}
    with pytest.raises(ConfigError) as e:
        load_settings({**env, "ELEVENLABS_BASE_URL": "api.elevenlabs.io"})
    msg = str(e.value)
    assert msg.startswith("ELEVENLABS_BASE_URL='api.elevenlabs.io' is not a URL"), msg
    assert "no scheme" in msg and "https://api.elevenlabs.io" in msg and "has a path" not in msg


@pytest.mark.parametrize("value", ["xml", "JSON ", "yaml"])
def test_a_bad_log_format_env_var_is_refused_like_the_option(kit: Kit, value: str) -> None:
    kit.write("a.md", para("a"))
    r = kit.kb("plan", "--dir", str(kit.dir), env={**kit.env, "KB_SYNC_LOG_FORMAT": value})
    line = _one_line(r.stderr)
    assert r.code == 5, r.stderr
    assert "KB_SYNC_LOG_FORMAT" in line and "human" in line and "json" in line, line
    assert r.stdout == "" and kit.backend.calls == []  # refused before any request


def test_the_log_format_option_still_wins_over_a_bad_env_var(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    env = {**kit.env, "KB_SYNC_LOG_FORMAT": "xml"}
    r = kit.kb("--log-format", "json", "plan", "--dir", str(kit.dir), env=env)
    assert r.code == 0, r.stderr


@pytest.mark.parametrize("value", ["json", "human"])
def test_a_good_log_format_env_var_is_used(kit: Kit, value: str) -> None:
    kit.write("a.md", para("a"))
    r = kit.kb("plan", "--dir", str(kit.dir), env={**kit.env, "KB_SYNC_LOG_FORMAT": value})
    assert r.code == 0, r.stderr
    assert r.stderr.lstrip().startswith("{") == (value == "json"), r.stderr


def test_a_malformed_option_of_any_command_is_the_houses_one_line() -> None:
    r = run_cli(["push", "--dir", ".", "--index-wait", "soon"], {})
    line = _one_line(r.stderr)
    assert r.code == 5 and line.startswith("kb-sync: error: argument --index-wait:"), line
    assert line.endswith("; see kb-sync push --help"), line
