"""kb-sync as a separate process against the emulator served on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sync.emulator import Backend
from tests.canary import CANARY_KEY

from .conftest import Served, para

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def served(loopback: Served) -> tuple[Backend, dict[str, str]]:
    return loopback.backend, loopback.env


def kb(
    env: dict[str, str], *args: str, script: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = script or [sys.executable, "-m", "sync"]
    proc = subprocess.run(
        [*cmd, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert CANARY_KEY not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def folder(tmp_path: Path) -> Path:
    d = tmp_path / "quarters"
    d.mkdir(exist_ok=True)
    for q in ("2025-Q1", "2025-Q2"):
        (d / f"{q}.md").write_text(f"# {q}\n\n" + para(q), encoding="utf-8")
    return d


def test_push_then_nothing_to_do_then_plan_codes(
    served: tuple[Backend, dict[str, str]], tmp_path: Path
) -> None:
    backend, env = served
    d = folder(tmp_path)
    assert kb(env, "plan", "--dir", str(d), "--detailed-exitcode").returncode == 2
    p = kb(env, "push", "--dir", str(d), "--index-wait", "30")
    assert p.returncode == 0, p.stderr
    assert "2 to add, 0 to change, 0 to destroy" in p.stdout
    assert len(backend.agent_kb(env["ELEVENLABS_AGENT_ID"])) == 2
    again = kb(env, "push", "--dir", str(d), "--strict-hash", "--json")
    assert again.returncode == 0
    assert (
        json.loads(again.stdout)["plan"]["summary"]["text"] == "0 to add, 0 to change, 0 to destroy"
    )
    assert kb(env, "plan", "--dir", str(d), "--detailed-exitcode").returncode == 0


def test_runbook_shim_commands_work_verbatim(
    served: tuple[Backend, dict[str, str]], tmp_path: Path
) -> None:
    backend, env = served
    d = folder(tmp_path)
    shim = [sys.executable, str(ROOT / "elevenlabs_sync_v2.py")]
    dry = kb(env, "--dir", str(d), "--dry-run", script=shim)
    assert dry.returncode == 0 and "2 to add" in dry.stdout
    assert all(c.method == "GET" for c in backend.calls)
    assert kb(env, "--dir", str(d), "--index-wait", "30", script=shim).returncode == 0
    strict = kb(env, "--dir", str(d), "--strict-hash", "--index-wait", "30", script=shim)
    assert strict.returncode == 0 and "0 to add, 0 to change, 0 to destroy" in strict.stdout


def test_json_logs_for_cron(served: tuple[Backend, dict[str, str]], tmp_path: Path) -> None:
    _, env = served
    d = folder(tmp_path)
    p = kb(env, "push", "--dir", str(d), "--log-format", "json", "--index-wait", "30")
    assert p.returncode == 0
    events = [json.loads(line) for line in p.stderr.splitlines()]
    names = [e["event"] for e in events]
    for needed in (
        "kb.before",
        "plan",
        "doc.uploaded",
        "index.result",
        "agent.patched",
        "run.done",
    ):
        assert needed in names
    done = next(e for e in events if e["event"] == "run.done")
    assert done["count_before"] == 0 and done["count_after"] == 2


@pytest.mark.parametrize(
    ("change", "code", "needle"),
    [
        ({"ELEVENLABS_API_KEY": "wrong-key-123"}, 5, "HTTP 401"),
        ({"ELEVENLABS_AGENT_ID": "agent_doesnotexist"}, 5, "ELEVENLABS_AGENT_ID"),
        ({"ELEVENLABS_AGENT_ID": ""}, 5, "ELEVENLABS_AGENT_ID is not set"),
        ({"ELEVENLABS_BASE_URL": "http://example.com"}, 4, "not https"),
    ],
)
def test_user_mistakes_are_one_line_with_distinct_codes(
    served: tuple[Backend, dict[str, str]],
    tmp_path: Path,
    change: dict[str, str],
    code: int,
    needle: str,
) -> None:
    backend, env = served
    p = kb({**env, **change}, "push", "--dir", str(folder(tmp_path)))
    assert p.returncode == code
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("kb-sync: error:") and needle in last
    assert all(c.method == "GET" for c in backend.calls)


def test_help_documents_exit_codes() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "sync", "push", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    for line in (
        "0  done",
        "2  changes pending",
        "3  partial apply",
        "4  a guard refused",
        "5  bad input",
    ):
        assert line in p.stdout


def test_usage_errors_exit_5_without_traceback() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "sync", "push"], capture_output=True, text=True, cwd=ROOT
    )
    assert p.returncode == 5 and "--dir" in p.stderr and "Traceback" not in p.stderr


def test_emulator_command_serves_the_cli(tmp_path: Path) -> None:
    """The staging code path: `kb-sync emulator` in one process, `kb-sync push` in another."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sync",
            "emulator",
            "--port",
            "0",
            "--api-key",
            CANARY_KEY,
            "--index-seconds",
            "0.2",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(3)]
        assert all(ln.startswith("export ") for ln in lines)  # copy-paste into a shell
        env = dict(ln.removeprefix("export ").split("=", 1) for ln in lines)
        assert env["ELEVENLABS_BASE_URL"].startswith("http://127.0.0.1:")
        env.update(
            PATH=os.environ["PATH"], KB_SYNC_RECORD_DIR=str(tmp_path / "runs"), TMPDIR=str(tmp_path)
        )
        p = kb(env, "push", "--dir", str(folder(tmp_path)), "--index-wait", "30")
        assert p.returncode == 0, p.stderr
        v = kb(env, "verify", "--dir", str(tmp_path / "quarters"))
        assert v.returncode == 0, v.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_sync_runtime_never_imports_the_emulator() -> None:
    code = (
        "import sys, sync.cli, sync.push, sync.apply, sync.rollback, sync.verify, sync.status;"
        "sync.cli.build_parser({});"
        "assert not [m for m in sys.modules if m.startswith(('sync.emulator', 'responses'))]"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize("shim", ["elevenlabs_sync_v2.py", "sync-with-monitoring.py"])
def test_a_shim_run_by_a_python_without_the_dependencies_says_how_to_install(shim: str) -> None:
    # -S: no site-packages, as a bare system python3 without `pip install .`
    p = subprocess.run(
        [sys.executable, "-S", str(ROOT / shim), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert p.returncode == 5 and "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install ." in lines[0] and sys.executable in lines[0]


def test_a_wrong_shaped_listing_over_http_is_one_line_not_a_traceback(
    served: tuple[Backend, dict[str, str]], tmp_path: Path
) -> None:
    """The review's repro: the served emulator told over ``POST /_emulator/faults`` to answer
    the listing ``200 {"documents": "nope"}``; ``kb-sync plan`` in another process."""
    import requests

    backend, env = served
    rule: dict[str, Any] = {"method": "GET", "path": "/v1/convai/knowledge-base$", "times": None}
    rule |= {"status": 200, "body": {"documents": "nope", "has_more": False}}
    url = env["ELEVENLABS_BASE_URL"]
    assert requests.post(f"{url}/_emulator/faults", json=rule, timeout=10).ok
    p = kb(env, "plan", "--dir", str(folder(tmp_path)))
    assert p.returncode == 1, p.stderr
    (line,) = [ln for ln in p.stderr.splitlines() if "error" in ln]
    assert line.startswith("kb-sync: error: the server's answer to GET /v1/convai/knowledge-base")
    assert "'documents' as a string, not a list" in line and "ELEVENLABS_BASE_URL" in line
