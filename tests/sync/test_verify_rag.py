"""verify's RAG probe reads the real chunk shape (``text``, not ``content``): it fails when
retrieval serves stale text for a current document, or nothing of it, and passes when the
chunks are the current file's. In-process (``responses``) and over loopback (a subprocess
against the emulator served on 127.0.0.1, driven through its control plane)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sync.emulator import RemoteEmulator
from tests.canary import CANARY_KEY

from .conftest import Kit, Served, para

ROOT = Path(__file__).resolve().parents[2]
CHECK = "2025-Q1.md: RAG returns the current text"
STALE = "\n\n".join(f"Раздел {i} документа 2025-Q1: старые цифры за период {i}." for i in range(8))


def _by_name(report: dict[str, object]) -> dict[str, dict[str, object]]:
    checks = report["checks"]
    assert isinstance(checks, list)
    return {str(c["check"]): c for c in checks}


def _push_one(kit: Kit) -> str:
    kit.write("2025-Q1.md", "# 2025-Q1\n\n" + para("2025-Q1"))
    assert kit.push().code == 0
    doc_id = str(kit.managed_kb()[0]["id"])
    return doc_id


def test_verify_passes_when_retrieval_serves_the_current_text(kit: Kit) -> None:
    _push_one(kit)
    r = kit.kb("verify", "--dir", str(kit.dir), "--json")
    assert r.code == 0, r.stdout
    check = _by_name(json.loads(r.stdout))[CHECK]
    assert check["ok"] and "chunks from this document" in str(check["detail"])


def test_verify_fails_when_retrieval_serves_stale_text_for_the_current_doc(kit: Kit) -> None:
    doc_id = _push_one(kit)
    kit.backend.serve_stale(doc_id, STALE)  # an index built on an older version
    r = kit.kb("verify", "--dir", str(kit.dir), "--json")
    assert r.code == 6, r.stdout
    check = _by_name(json.loads(r.stdout))[CHECK]
    assert not check["ok"]
    assert "2025-Q1.md" in str(check["detail"]) and "not in the current file" in str(
        check["detail"]
    )
    human = kit.kb("verify", "--dir", str(kit.dir))
    assert f"FAIL  {CHECK}" in human.stdout


def test_verify_fails_when_retrieval_returns_nothing_of_the_doc(kit: Kit) -> None:
    doc_id = _push_one(kit)
    kit.backend.serve_stale(doc_id, "Совсем другое содержание без общих слов.")
    r = kit.kb("verify", "--dir", str(kit.dir), "--json")
    assert r.code == 6
    check = _by_name(json.loads(r.stdout))[CHECK]
    assert not check["ok"] and "no chunk of 2025-Q1.md" in str(check["detail"])


# ----------------------------------------------------------------- over loopback


@pytest.fixture
def served(loopback: Served) -> tuple[RemoteEmulator, dict[str, str]]:
    return RemoteEmulator(loopback.url), loopback.env


def _kb(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "sync", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in proc.stderr and CANARY_KEY not in proc.stdout + proc.stderr
    return proc


@pytest.mark.http
def test_verify_over_loopback_fails_on_stale_chunks_and_passes_when_current(
    served: tuple[RemoteEmulator, dict[str, str]], tmp_path: Path
) -> None:
    remote, env = served
    folder = tmp_path / "quarters"
    folder.mkdir()
    (folder / "2025-Q1.md").write_text("# 2025-Q1\n\n" + para("2025-Q1"), encoding="utf-8")
    assert _kb(env, "push", "--dir", str(folder), "--index-wait", "30").returncode == 0
    doc_id = remote.agent_kb(env["ELEVENLABS_AGENT_ID"])[0]["id"]
    ok = _kb(env, "verify", "--dir", str(folder), "--json")
    assert ok.returncode == 0, ok.stdout
    remote.serve_stale(doc_id, STALE)
    stale = _kb(env, "verify", "--dir", str(folder), "--json")
    assert stale.returncode == 6, stale.stdout
    check = _by_name(json.loads(stale.stdout))[CHECK]
    assert not check["ok"] and "2025-Q1.md" in str(check["detail"])
    remote.serve_stale(doc_id, None)
    assert _kb(env, "verify", "--dir", str(folder)).returncode == 0
