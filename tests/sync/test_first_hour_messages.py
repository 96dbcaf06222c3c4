"""The first hour's messages (docs/errors.md), each as ``python -m sync`` in a subprocess:
the exact stderr line and the exit code, against the emulator served on 127.0.0.1."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sync.clock import TIME_SCALE_VAR
from tests.canary import CANARY_KEY

from .conftest import Served, para

ROOT = Path(__file__).resolve().parents[2]

KEY_FIX = (
    "check ELEVENLABS_API_KEY (the workspace's key: ElevenLabs > Developers > API keys; "
    "it needs access to Conversational AI)"
)
MASS_DELETE = (
    "kb-sync: error: the plan would delete 2 of 2 managed documents (an empty or truncated "
    "source?); check the folder, or pass --allow-mass-delete"
)
EMPTY_NOTE = 'note="no *.md files in the folder: the plan removes every managed document"'


def run(env: dict[str, str], *args: str, merged: bool = False) -> subprocess.CompletedProcess[str]:
    """``kb-sync ARGS`` in a fresh process; ``merged``: stderr into stdout, unbuffered, so the
    order of the two streams is what a terminal shows."""
    full = {**env, "PYTHONPATH": str(ROOT)}
    if merged:
        full["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "sync", *args],
        env=full,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merged else subprocess.PIPE,
        text=True,
        timeout=60,
    )
    out = proc.stdout + (proc.stderr or "")
    assert CANARY_KEY not in out and "Traceback" not in out
    return proc


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def json_error(proc: subprocess.CompletedProcess[str]) -> dict[str, object]:
    """The stderr of a ``--log-format json`` run that failed: one ``error`` event, nothing else."""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "kb-sync: error" not in proc.stderr  # no second, human line
    ev = json.loads(lines[0])
    assert ev["event"] == "error" and ev["level"] == "error"
    return dict(ev)


def quarters(tmp_path: Path) -> Path:
    d = tmp_path / "quarters"
    d.mkdir(exist_ok=True)
    for q in ("2025-Q1", "2025-Q2"):
        (d / f"{q}.md").write_text(f"# {q}\n\n" + para(q), encoding="utf-8")
    return d


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def writes(loopback: Served) -> list[object]:
    return [c for c in loopback.backend.calls if c.method != "GET"]


def agent_path(loopback: Served) -> str:
    return f"/v1/convai/agents/{loopback.env['ELEVENLABS_AGENT_ID']}"


# 1 and 3: a user mistake is one line; a base URL with a path is refused before any request


def test_a_base_url_with_a_path_is_refused_up_front(loopback: Served, tmp_path: Path) -> None:
    url = loopback.url + "/v1"
    p = run({**loopback.env, "ELEVENLABS_BASE_URL": url}, "plan", "--dir", str(quarters(tmp_path)))
    assert p.returncode == 5
    assert one_line(p) == (
        f"kb-sync: error: ELEVENLABS_BASE_URL='{url}' has a path; give the host only, "
        "e.g. https://api.elevenlabs.io (kb-sync adds /v1/...)"
    )
    assert loopback.backend.calls == []  # refused before the first request


def test_a_user_mistake_in_json_mode_is_one_error_event(loopback: Served, tmp_path: Path) -> None:
    url = loopback.url + "/v1"
    env = {**loopback.env, "ELEVENLABS_BASE_URL": url}
    p = run(env, "--log-format", "json", "plan", "--dir", str(quarters(tmp_path)))
    assert p.returncode == 5
    ev = json_error(p)
    assert ev["exit"] == 5 and ev["kind"] == "ConfigError"
    assert ev["message"] == (
        f"ELEVENLABS_BASE_URL='{url}' has a path; give the host only, "
        "e.g. https://api.elevenlabs.io (kb-sync adds /v1/...)"
    )


def test_an_unset_agent_id_is_one_line(loopback: Served, tmp_path: Path) -> None:
    env = {k: v for k, v in loopback.env.items() if k != "ELEVENLABS_AGENT_ID"}
    p = run(env, "plan", "--dir", str(quarters(tmp_path)))
    assert p.returncode == 5
    line = one_line(p)
    assert line.startswith("kb-sync: error: ELEVENLABS_AGENT_ID is not set; export it")
    assert loopback.backend.calls == []


# 2: connection failures name the setting, host and port, and fail at once


@pytest.mark.parametrize("log_format", ["human", "json"])
def test_connection_refused_fails_at_once(
    loopback: Served, tmp_path: Path, log_format: str
) -> None:
    port = free_port()  # nothing listens on it
    url = f"http://127.0.0.1:{port}"
    env = {**loopback.env, "ELEVENLABS_BASE_URL": url}
    started = time.monotonic()
    p = run(env, "--log-format", log_format, "plan", "--dir", str(quarters(tmp_path)))
    assert time.monotonic() - started < 10  # no retries (they took ~12 s at cf6d373)
    assert p.returncode == 1
    message = (
        f"ELEVENLABS_BASE_URL={url}: connection refused (host 127.0.0.1, port {port}) on GET "
        f"{agent_path(loopback)}; check the URL and the network, or that the server is up"
    )
    if log_format == "human":
        assert one_line(p) == f"kb-sync: error: {message}"
    else:
        ev = json_error(p)
        assert ev["message"] == message and ev["exit"] == 1


def test_an_unknown_host_fails_at_once(loopback: Served, tmp_path: Path) -> None:
    url = "https://nonexistent.invalid"
    env = {**loopback.env, "ELEVENLABS_BASE_URL": url}
    del env[TIME_SCALE_VAR]  # test-only and loopback-only: refused with any other host
    started = time.monotonic()
    p = run(env, "plan", "--dir", str(quarters(tmp_path)))
    assert time.monotonic() - started < 20
    assert p.returncode == 1
    assert one_line(p) == (
        f"kb-sync: error: ELEVENLABS_BASE_URL={url}: unknown host (host nonexistent.invalid, "
        f"port 443) on GET {agent_path(loopback)}; check the URL and the network, or that the "
        "server is up"
    )


def test_a_tls_failure_fails_at_once(loopback: Served, tmp_path: Path) -> None:
    port = int(loopback.url.rsplit(":", 1)[1])
    url = f"https://127.0.0.1:{port}"  # https to a server that speaks http
    env = {**loopback.env, "ELEVENLABS_BASE_URL": url}
    p = run(env, "plan", "--dir", str(quarters(tmp_path)))
    assert p.returncode == 1
    assert one_line(p) == (
        f"kb-sync: error: ELEVENLABS_BASE_URL={url}: TLS handshake failed (host 127.0.0.1, "
        f"port {port}) on GET {agent_path(loopback)}; check the URL and the network, or that "
        "the server is up"
    )


# 4: a wrong key names ELEVENLABS_API_KEY


@pytest.mark.parametrize("log_format", ["human", "json"])
def test_a_wrong_key_names_the_setting(loopback: Served, tmp_path: Path, log_format: str) -> None:
    wrong = "sk_" + "0" * 40  # built here: keys stay out of the test's parameters
    assert wrong != CANARY_KEY
    env = {**loopback.env, "ELEVENLABS_API_KEY": wrong}
    p = run(env, "--log-format", log_format, "plan", "--dir", str(quarters(tmp_path)))
    assert wrong not in p.stdout + p.stderr
    assert p.returncode == 5
    message = f"HTTP 401 invalid_api_key: Invalid API key; {KEY_FIX}"
    if log_format == "human":
        assert one_line(p) == f"kb-sync: error: {message}"
    else:
        ev = json_error(p)
        assert ev["message"] == message and ev["exit"] == 5 and ev["kind"] == "AuthError"
    assert writes(loopback) == []


# 5: a folder with no *.md files


def empty_line(line: str, folder: Path) -> bool:
    """The human log line of the ``folder.empty`` warning (after its HH:MM:SS stamp)."""
    stamp = re.fullmatch(r"\d\d:\d\d:\d\d (.*)", line)
    return stamp is not None and stamp[1] == f"warning folder.empty dir={folder} {EMPTY_NOTE}"


def test_an_empty_folder_says_so_first_and_push_is_still_refused(
    loopback: Served, tmp_path: Path
) -> None:
    env = loopback.env
    assert run(env, "push", "--dir", str(quarters(tmp_path)), "--index-wait", "30").returncode == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not markdown\n", encoding="utf-8")

    plan = run(env, "plan", "--dir", str(empty), merged=True)
    assert plan.returncode == 0
    lines = plan.stdout.splitlines()
    assert empty_line(lines[0], empty), plan.stdout  # before anything else, the plan included
    assert "Plan: 0 to add, 0 to change, 2 to destroy." in lines

    before = len(writes(loopback))
    push = run(env, "push", "--dir", str(empty))
    assert push.returncode == 4
    errs = push.stderr.splitlines()
    assert empty_line(errs[0], empty), push.stderr
    assert errs[-1] == MASS_DELETE
    assert [ln for ln in errs if ln.startswith("kb-sync: error")] == [MASS_DELETE]
    assert len(writes(loopback)) == before  # nothing written
    assert len(loopback.backend.agent_kb(env["ELEVENLABS_AGENT_ID"])) == 2


# 7: rollback --dry-run and a second rollback


def test_rollback_dry_run_says_so_and_a_second_rollback_reuses(
    loopback: Served, tmp_path: Path
) -> None:
    env = loopback.env
    d = quarters(tmp_path)
    assert run(env, "push", "--dir", str(d), "--index-wait", "30").returncode == 0
    for f in d.glob("*.md"):
        f.write_text(f.read_text(encoding="utf-8") + "\n\nRevised figures.\n", encoding="utf-8")
    second = run(env, "push", "--dir", str(d), "--index-wait", "30")
    assert second.returncode == 0, second.stderr
    found = re.search(r"-push-([0-9a-f]+)\.json", second.stdout)
    assert found, second.stdout
    run_id = found[1]

    before = len(writes(loopback))
    dry = run(env, "rollback", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    out = dry.stdout.splitlines()
    assert out[0] == (
        f"Rollback: restore 2 entries (2 to recreate), delete 2 created by run {run_id}"
    )
    assert out[-1] == "Dry run: nothing was changed."
    assert len(writes(loopback)) == before

    first = run(env, "rollback")
    assert first.returncode == 0, first.stderr
    assert "Dry run" not in first.stdout
    # the same push undone again (--to its stored run): the copies are reused, not uploaded,
    # and since the agent already holds them, there is nothing to do and nothing is written
    again = run(env, "rollback", "--to", run_id, "--dry-run")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[0] == (
        # what the push created is gone already (the first rollback deleted it): not listed
        f"Rollback: restore 2 entries (0 to recreate, 2 to reuse), delete 0 created by run {run_id}"
    )
    before = len(writes(loopback))
    redo = run(env, "rollback", "--to", run_id)
    assert redo.returncode == 0, redo.stderr
    assert redo.stdout.startswith("Nothing to roll back")
    assert len(writes(loopback)) == before
