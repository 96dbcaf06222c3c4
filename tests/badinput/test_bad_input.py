"""Bad input: one test per row of docs/bad-input.md.

Each checks the exit code, a one-line message naming the file or setting (no traceback), and
that nothing was written: zero non-GET requests in the emulator's call log, the agent unchanged.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sync.clock import FakeClock
from sync.emulator import Backend, serve
from sync.testing import Result, run_cli
from tests.canary import CANARY_KEY

pytestmark = pytest.mark.safety

ROOT = Path(__file__).resolve().parents[2]
GOOD = "Delivery takes three to five working days across the country.\n\n" * 12  # > 500 bytes


@dataclass
class World:
    backend: Backend
    clock: FakeClock
    agent: str
    dir: Path
    env: dict[str, str]
    kb_before: list[dict[str, Any]]

    def run(self, *argv: str, env: dict[str, str] | None = None) -> Result:
        return run_cli(
            argv, self.env if env is None else env, backend=self.backend, clock=self.clock
        )

    def push(self, env: dict[str, str] | None = None) -> Result:
        return self.run("push", "--dir", str(self.dir), env=env)

    def nothing_written(self) -> None:
        writes = [f"{c.method} {c.path}" for c in self.backend.calls if c.method != "GET"]
        assert writes == []
        assert self.backend.agent_kb(self.agent) == self.kb_before


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    clock = FakeClock()
    b = Backend(api_key=CANARY_KEY, clock=clock, index_seconds=3.0, seed=5)
    agent = b.seed_agent()
    b.seed_document("Pricing FAQ", GOOD, attach_to=[agent])  # an unmanaged entry
    folder = tmp_path / "quarters"
    folder.mkdir()
    (folder / "2025-Q1.md").write_text(GOOD, "utf-8")
    env = {
        "ELEVENLABS_API_KEY": CANARY_KEY,
        "ELEVENLABS_AGENT_ID": agent,
        "KB_SYNC_NAMESPACE": "kb-sync",
        "KB_SYNC_RECORD_DIR": str(tmp_path / "runs"),
    }
    return World(b, clock, agent, folder, env, b.agent_kb(agent))


def one_line_error(res: Result, *needles: str) -> str:
    out, err = res.stdout, res.stderr
    assert "Traceback" not in out + err
    assert CANARY_KEY not in out + err
    lines = [ln for ln in err.splitlines() if ln.startswith("kb-sync: error:")]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


# ----------------------------------------------------------------------- local files


def test_invalid_utf8(world: World) -> None:
    (world.dir / "2025-Q2.md").write_bytes(b"caf\xe9 au lait\n" * 50)
    res = world.push()
    assert res.code == 5
    one_line_error(res, "2025-Q2.md", "not valid UTF-8")
    world.nothing_written()


@pytest.mark.parametrize("content", [b"", b"   \n\t\r\n  \n"], ids=["empty", "whitespace"])
def test_empty_or_whitespace_only(world: World, content: bytes) -> None:
    (world.dir / "2025-Q2.md").write_bytes(content)
    res = world.push()
    assert res.code == 5
    one_line_error(res, "2025-Q2.md", "is empty")
    world.nothing_written()


def test_binary_file_named_md(world: World) -> None:
    (world.dir / "logo.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200))
    res = world.push()
    assert res.code == 5
    one_line_error(res, "logo.md", "binary")
    world.nothing_written()


def test_document_over_300k_characters(world: World) -> None:
    (world.dir / "huge.md").write_text("ж" * 300_001, "utf-8")  # characters, not bytes
    res = world.push()
    assert res.code == 5
    one_line_error(res, "huge.md", "300001 characters", "300000")
    world.nothing_written()


def test_exactly_300k_characters_is_accepted(world: World) -> None:
    (world.dir / "big.md").write_text("ж" * 300_000, "utf-8")
    assert world.run("plan", "--dir", str(world.dir)).code == 0
    world.nothing_written()


def test_names_with_spaces_and_unicode_are_fine(world: World) -> None:
    """Not bad input: such names are kept as they are in the managed name."""
    (world.dir / "Q1 отчёт (final).md").write_text(GOOD + "отчёт\n", "utf-8")
    assert world.push().code == 0
    names = [e["name"] for e in world.backend.agent_kb(world.agent)]
    assert any(n.startswith("kb-sync:Q1 отчёт (final).md#") for n in names)


def test_case_only_difference(world: World) -> None:
    (world.dir / "2025-q1.md").write_text(GOOD + "lower\n", "utf-8")
    res = world.push()
    assert res.code == 5
    one_line_error(res, "2025-Q1.md", "2025-q1.md", "differ only in case")
    world.nothing_written()


def test_two_unicode_forms_map_to_one_name(world: World) -> None:
    nfc = unicodedata.normalize("NFC", "café.md")
    nfd = unicodedata.normalize("NFD", "café.md")
    assert nfc != nfd
    (world.dir / nfc).write_text(GOOD, "utf-8")
    (world.dir / nfd).write_text(GOOD + "x\n", "utf-8")
    res = world.push()
    assert res.code == 5
    one_line_error(res, "Unicode form", "rename one")
    world.nothing_written()


def test_symlink_leaving_the_folder(world: World, tmp_path: Path) -> None:
    outside = tmp_path / "secret.md"
    outside.write_text(GOOD, "utf-8")
    (world.dir / "link.md").symlink_to(outside)
    res = world.push()
    assert res.code == 5
    one_line_error(res, "link.md", "symlink leads outside")
    world.nothing_written()


def test_symlink_inside_the_folder_is_read(world: World) -> None:
    (world.dir / "alias.md").symlink_to(world.dir / "2025-Q1.md")
    assert world.run("plan", "--dir", str(world.dir)).code == 0


def test_missing_folder(world: World) -> None:
    res = world.run("push", "--dir", str(world.dir / "nope"))
    assert res.code == 5
    one_line_error(res, "nope", "does not exist")
    world.nothing_written()


def test_folder_is_a_file(world: World) -> None:
    res = world.run("push", "--dir", str(world.dir / "2025-Q1.md"))
    assert res.code == 5
    one_line_error(res, "2025-Q1.md", "is not a folder")
    world.nothing_written()


def _deny(monkeypatch: pytest.MonkeyPatch, method: str, target: Path) -> None:
    """Permission denied on ``target`` (tests run as root here, where chmod 000 reads fine)."""
    orig = getattr(Path, method)

    def denied(self: Path, *a: Any, **kw: Any) -> Any:
        if self.resolve() == target.resolve():
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return orig(self, *a, **kw)

    monkeypatch.setattr(Path, method, denied)


def test_unreadable_folder(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    _deny(monkeypatch, "iterdir", world.dir)
    res = world.push()
    assert res.code == 5
    one_line_error(res, str(world.dir), "cannot be read", "Permission denied")
    world.nothing_written()


def test_unreadable_file(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    _deny(monkeypatch, "read_bytes", world.dir / "2025-Q1.md")
    res = world.push()
    assert res.code == 5
    one_line_error(res, "2025-Q1.md", "cannot be read", "Permission denied")
    world.nothing_written()


def test_empty_folder_is_refused_by_the_mass_delete_guard(world: World) -> None:
    """An empty source after a sync would remove every managed doc: a guard, exit 4."""
    assert world.push().code == 0
    world.backend.clear_calls()
    world.kb_before = world.backend.agent_kb(world.agent)
    (world.dir / "2025-Q1.md").unlink()
    res = world.push()
    assert res.code == 4
    one_line_error(res, "would delete 1 of 1", "--allow-mass-delete")
    world.nothing_written()


# ----------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("drop", "override", "code", "needle"),
    [
        ("ELEVENLABS_API_KEY", {}, 5, "ELEVENLABS_API_KEY is not set"),
        ("ELEVENLABS_AGENT_ID", {}, 5, "ELEVENLABS_AGENT_ID is not set"),
        (None, {"ELEVENLABS_API_KEY": "   "}, 5, "ELEVENLABS_API_KEY is not set"),
        (None, {"ELEVENLABS_AGENT_ID": "agent 42; rm"}, 5, "ELEVENLABS_AGENT_ID='agent 42; rm'"),
        (None, {"ELEVENLABS_BASE_URL": "api.elevenlabs.io"}, 5, "ELEVENLABS_BASE_URL="),
        (None, {"ELEVENLABS_BASE_URL": "http://example.com"}, 4, "is not https"),
        (None, {"RAG_EMBEDDING_MODEL": "ada-002"}, 5, "RAG_EMBEDDING_MODEL='ada-002' is unknown"),
        (None, {"RAG_INDEXING_TIMEOUT": "3 minutes"}, 5, "RAG_INDEXING_TIMEOUT='3 minutes'"),
        (None, {"RAG_INDEXING_TIMEOUT": "-1"}, 5, "RAG_INDEXING_TIMEOUT='-1'"),
        (None, {"RAG_INDEXING_TIMEOUT": "nan"}, 5, "RAG_INDEXING_TIMEOUT='nan'"),
        (None, {"KB_SYNC_NAMESPACE": "Kb Sync!"}, 5, "KB_SYNC_NAMESPACE='Kb Sync!'"),
        (None, {"RAG_EMBEDDING_MODEL": "e5_mistral_7b_instruct"}, 5, "retrieves with"),
    ],
    ids=[
        "no-key",
        "no-agent",
        "blank-key",
        "malformed-agent",
        "base-url-not-a-url",
        "base-url-http",
        "unknown-model",
        "timeout-words",
        "timeout-negative",
        "timeout-nan",
        "bad-namespace",
        "model-differs-from-agent",
    ],
)
def test_missing_or_malformed_setting(
    world: World,
    drop: str | None,
    override: dict[str, str],
    code: int,
    needle: str,
) -> None:
    env = {k: v for k, v in world.env.items() if k != drop} | override
    res = world.push(env=env)
    assert res.code == code
    one_line_error(res, needle)
    world.nothing_written()


def test_bad_option_is_one_line_exit_5(world: World) -> None:
    res = world.run("push", "--dir", str(world.dir), "--index-wait", "soon")  # argparse's exit
    assert res.code == 5
    err = res.stderr
    assert err.strip().count("\n") == 0 and "--index-wait" in err and "'soon'" in err
    world.nothing_written()


# ----------------------------------------------------------------------- the remote side


def test_wrong_key_401(world: World) -> None:
    env = world.env | {"ELEVENLABS_API_KEY": "sk_wrong_" + "0" * 20}
    res = world.push(env=env)
    assert res.code == 5
    line = one_line_error(res, "401", "invalid_api_key")
    assert "sk_wrong_" not in line
    world.nothing_written()


def test_unknown_agent_404(world: World) -> None:
    env = world.env | {"ELEVENLABS_AGENT_ID": "agent_doesnotexist"}
    res = world.push(env=env)
    assert res.code == 5
    one_line_error(res, "ELEVENLABS_AGENT_ID=agent_doesnotexist", "no such agent")
    world.nothing_written()


def test_agent_with_rag_disabled(world: World) -> None:
    agent = world.backend.seed_agent(rag_enabled=False)
    res = world.push(env=world.env | {"ELEVENLABS_AGENT_ID": agent})
    assert res.code == 5
    one_line_error(res, agent, "RAG disabled")
    world.nothing_written()
    assert world.backend.agent_kb(agent) == []


def test_old_script_duplicates_are_shown_then_replaced_with_adopt_legacy(world: World) -> None:
    """The old script left two uploads of 2025-Q1.md on the agent (named after the file).

    Without --adopt-legacy the plan names them and leaves them alone (unmanaged). With it,
    push replaces both with one managed entry, keeps the unmanaged entry in place and deletes
    the old uploads."""
    b = world.backend
    dup1 = b.seed_document("2025-Q1.md", GOOD, attach_to=[world.agent])
    dup2 = b.seed_document("2025-Q1", GOOD + "older\n", attach_to=[world.agent])
    res = world.run("plan", "--dir", str(world.dir))
    assert res.code == 0
    out = res.stdout
    assert "--adopt-legacy" in out and dup1 in out and dup2 in out
    assert world.run("push", "--dir", str(world.dir), "--adopt-legacy", "--json").code == 0
    kb = b.agent_kb(world.agent)
    assert [e["name"] for e in kb][0] == "Pricing FAQ"
    managed = [e for e in kb if e["name"].startswith("kb-sync:2025-Q1.md#")]
    assert len(managed) == 1 and len(kb) == 2
    assert dup1 not in b.docs and dup2 not in b.docs


# ----------------------------------------------------------------------- as a subprocess


@pytest.fixture
def served(world: World) -> Iterator[str]:
    world.backend.clock = __import__("sync.clock", fromlist=["SystemClock"]).SystemClock()
    with serve(world.backend) as srv:
        yield srv.url


def _cli(url: str, env: dict[str, str], *argv: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    full = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "ELEVENLABS_BASE_URL": url,
        "KB_SYNC_RECORD_DIR": str(tmp / "runs"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "sync", *argv],
        env=full,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.http
@pytest.mark.parametrize(
    ("case", "code", "needle"),
    [
        ("invalid-utf8", 5, "2025-Q2.md: is not valid UTF-8"),
        ("no-agent-env", 5, "ELEVENLABS_AGENT_ID is not set"),
        ("wrong-key", 5, "HTTP 401 invalid_api_key"),
        ("unknown-agent", 5, "no such agent"),
    ],
)
def test_bad_input_in_a_subprocess(
    world: World, served: str, tmp_path: Path, case: str, code: int, needle: str
) -> None:
    env = dict(world.env)
    if case == "invalid-utf8":
        (world.dir / "2025-Q2.md").write_bytes(b"\xff\xfe bad\n")
    elif case == "no-agent-env":
        del env["ELEVENLABS_AGENT_ID"]
    elif case == "wrong-key":
        env["ELEVENLABS_API_KEY"] = "sk_wrong_key_123456"
    elif case == "unknown-agent":
        env["ELEVENLABS_AGENT_ID"] = "agent_nope"
    p = _cli(served, env, "push", "--dir", str(world.dir), "--log-format", "json", tmp=tmp_path)
    assert p.returncode == code, p.stderr
    assert "Traceback" not in p.stderr + p.stdout
    assert CANARY_KEY not in p.stderr + p.stdout
    # JSON mode: the failure is one `error` event, and no second (human) line
    assert not [ln for ln in p.stderr.splitlines() if ln.startswith("kb-sync: error:")]
    errors = [e for e in map(json.loads, p.stderr.splitlines()) if e.get("event") == "error"]
    assert len(errors) == 1 and needle in errors[0]["message"], p.stderr
    assert errors[0]["exit"] == code
    world.nothing_written()
