"""Start-up: commands load only what they need (generate and Jinja2 only for generate)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported(*argv: str) -> set[str]:
    """The modules ``python -m sync ARGV`` imported (``-X importtime``)."""
    env = {"PATH": "/usr/bin:/bin", "ELEVENLABS_API_KEY": "k", "ELEVENLABS_AGENT_ID": "agent_x"}
    env["ELEVENLABS_BASE_URL"] = "http://127.0.0.1:9"  # nothing listens: the run stops early
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "sync", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )
    assert "Traceback" not in proc.stderr
    return {
        line.split("|")[2].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "cumulative" not in line
    }


@pytest.mark.parametrize(
    "argv", [("--help",), ("plan", "--dir", "."), ("status",), ("push", "--help")]
)
def test_commands_but_generate_never_load_generate_or_jinja2(argv: tuple[str, ...]) -> None:
    mods = imported(*argv)
    assert "sync.cli" in mods
    assert not {m for m in mods if m.startswith(("jinja2", "sync.generate"))}


def test_help_does_not_even_load_requests() -> None:
    assert not {m for m in imported("--help") if m.startswith(("requests", "urllib3"))}


def test_generate_still_parses_its_own_options() -> None:
    mods = imported("generate", "--help")
    assert "sync.generate" in mods  # its parser: the full one
    proc = subprocess.run(
        [sys.executable, "-m", "sync", "--log-format", "json", "generate", "--bogus"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 5 and "unrecognized arguments: --bogus" in proc.stderr
