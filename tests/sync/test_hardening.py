"""Hostile inputs and servers: bounded waits, refused keys, unknown statuses, missing KB."""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import responses

from sync.client import Client
from sync.clock import FakeClock
from sync.config import load_settings
from sync.emulator import FaultRule
from sync.errors import ConfigError
from sync.indexing import Indexer, IndexOptions
from sync.plan import Item
from sync.results import DocResult
from sync.testing import Killed
from tests.canary import CANARY_KEY

from .conftest import Kit, para

OK = {"ELEVENLABS_API_KEY": "k" * 12, "ELEVENLABS_AGENT_ID": "agent_abc"}
BASE = "https://api.elevenlabs.io"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0"])
def test_index_timeout_must_be_finite_and_positive(value: str) -> None:
    with pytest.raises(ConfigError, match="RAG_INDEXING_TIMEOUT"):
        load_settings({**OK, "RAG_INDEXING_TIMEOUT": value})


@pytest.mark.parametrize("value", ["nan", "inf", "0"])
def test_index_wait_option_must_be_finite_and_positive(kit: Kit, value: str) -> None:
    kit.write("a.md", para("a"))
    r = kit.push("--index-wait", value)
    assert r.code == 5, r.stderr
    assert "--index-wait" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert kit.writes() == []


BAD_KEYS = {  # built inside the test: a parameter's value would reach the reports
    "line-feed": lambda k: k[:10] + "\n" + k[10:],
    "carriage-return": lambda k: k[:10] + "\r" + k[10:],
    "non-ascii": lambda k: k + "é",
}


@pytest.mark.parametrize("variant", sorted(BAD_KEYS))
def test_a_key_with_control_or_non_ascii_characters_is_refused_without_echoing_it(
    variant: str,
) -> None:
    key = BAD_KEYS[variant](CANARY_KEY)
    with pytest.raises(ConfigError) as e:
        load_settings({**OK, "ELEVENLABS_API_KEY": key})
    msg = str(e.value)
    assert "ELEVENLABS_API_KEY" in msg and CANARY_KEY[:12] not in msg and "\n" not in msg


def test_an_empty_dir_is_refused_not_read_as_the_current_folder(kit: Kit) -> None:
    r = kit.kb("plan", "--dir", "")
    assert r.code == 5 and "--dir" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def _result(doc_id: str) -> DocResult:
    return DocResult(item=Item("create", "a.md", "kb-sync:a.md#0"), doc_id=doc_id, status="new")


BATCH_URL = f"{BASE}/v1/convai/knowledge-base/rag-index"


def _index_answers(batched: bool, status: str) -> None:
    """The index of d1 answered ``status``: by the batch endpoint, or (a server without it,
    405) by the one-document compute."""
    data = {"id": "i", "model": "m", "status": status}
    if batched:
        responses.post(BATCH_URL, json={"d1": {"status": "success", "data": data}})
    else:
        responses.post(BATCH_URL, status=405, json={"detail": "Method Not Allowed"})
        responses.post(f"{BASE}/v1/convai/knowledge-base/d1/rag-index", json=data)


@responses.activate
@pytest.mark.parametrize("batched", [True, False], ids=["batch", "per-document"])
def test_index_status_is_compared_case_insensitively(batched: bool) -> None:
    _index_answers(batched, "SUCCEEDED")
    clock = FakeClock()
    indexer = Indexer(Client(BASE, CANARY_KEY, clock=clock), clock, "m", IndexOptions(30))
    r = _result("d1")
    indexer.uploaded(r)
    with ThreadPoolExecutor(2) as pool:
        indexer.wait([r], pool)
    assert r.ready and r.status == "succeeded"


@responses.activate
@pytest.mark.parametrize("batched", [True, False], ids=["batch", "per-document"])
def test_an_unknown_status_is_pending_until_the_deadline_and_logged_once(
    caplog: pytest.LogCaptureFixture, batched: bool
) -> None:
    _index_answers(batched, "queued")
    clock = FakeClock()
    indexer = Indexer(Client(BASE, CANARY_KEY, clock=clock), clock, "m", IndexOptions(20))
    r = _result("d1")
    t0 = clock.now()
    with caplog.at_level(logging.WARNING), ThreadPoolExecutor(2) as pool:
        indexer.uploaded(r)
        indexer.wait([r], pool)
    assert not r.ready and "after 20s" in str(r.error)
    assert clock.now() - t0 >= 20 and len(responses.calls) > 3  # it kept polling
    assert sum("index.unknown_status" in m for m in caplog.messages) == 1


def test_an_agent_answer_without_a_knowledge_base_list_is_refused(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    agent_path = f"/v1/convai/agents/{kit.agent_id}$"
    body = {"agent_id": kit.agent_id, "name": "A", "conversation_config": {"agent": {}}}
    kit.backend.add_fault(FaultRule("GET", agent_path, times=None, status=200, body=body))
    r = kit.push()
    assert r.code == 1, r.stderr
    assert "knowledge_base" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert kit.writes() == []


def test_never_force_deletes_a_doc_our_agent_was_patched_back_onto(kit: Kit) -> None:
    """Another writer (a second machine, a person) puts our agent back on the superseded doc
    while this push waits out a lingering dependency: forcing would empty that file."""
    kit.write("a.md", para("a"))
    assert kit.push().code == 0
    old = kit.managed_kb()[0]["id"]
    kit.backend.linger(10)
    seen = {"deletes": 0}

    def put_back(backend, call):  # type: ignore[no-untyped-def]
        if call.method == "DELETE" and call.status == 400:
            seen["deletes"] += 1
            if seen["deletes"] == 2:
                backend.attach(kit.agent_id, old)

    kit.backend.after_request.append(put_back)
    kit.write("a.md", para("a2"))
    r = kit.push()
    assert r.code == 3, r.stderr
    assert old in kit.backend.docs  # kept: the agent uses it right now
    assert old in [e["id"] for e in kit.backend.agent_kb(kit.agent_id)]
    assert not any(c.method == "DELETE" and c.query.get("force") for c in kit.backend.calls)
    assert "attached to this agent" in r.stderr


def test_a_crash_right_after_the_patch_makes_rollback_refuse_not_undo_two_pushes(
    kit: Kit,
) -> None:
    kit.write("a.md", para("v1"))
    assert kit.push().code == 0
    kit.write("a.md", para("v2"))
    assert kit.push().code == 0  # its record is complete
    kit.write("a.md", para("v3"))

    def crash_after_patch(backend, call):  # type: ignore[no-untyped-def]
        if call.method == "PATCH" and call.status == 200:
            raise Killed

    kit.backend.after_request.append(crash_after_patch)
    assert kit.push().killed
    kit.backend.after_request.clear()
    on_v3 = [e["id"] for e in kit.backend.agent_kb(kit.agent_id)]
    r = kit.kb("rollback")
    assert r.code == 5, r.stderr
    assert "is incomplete" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert [e["id"] for e in kit.backend.agent_kb(kit.agent_id)] == on_v3  # nothing undone


def test_an_unwritable_record_dir_is_refused_before_any_write(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    blocker = kit.records.parent / "not-a-dir"
    blocker.write_text("x")
    r = kit.kb("push", "--dir", str(kit.dir), env={**kit.env, "KB_SYNC_RECORD_DIR": str(blocker)})
    assert r.code == 5, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("kb-sync: error:")]
    assert len(errors) == 1 and "KB_SYNC_RECORD_DIR" in errors[0]
    assert kit.writes() == []


def test_a_patch_answer_that_is_not_json_is_checked_by_reading_the_agent_back(
    kit: Kit,
) -> None:
    kit.write("a.md", para("a"))
    assert kit.push().code == 0
    kit.write("a.md", para("a2"))
    path = f"/v1/convai/agents/{kit.agent_id}$"
    kit.backend.add_fault(FaultRule("PATCH", path, times=1, status=200, body="<html>oops"))
    r = kit.push()
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr
    # the injected answer replaced the route: the agent did not change, and the read-back says so
    assert r.code == 1, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("kb-sync: error:")]
    assert len(errors) == 1 and "read back and keeps its previous documents" in errors[0]
    assert len(kit.managed_docs()) == 1 + 1  # nothing deleted; the unattached upload waits


@pytest.mark.parametrize(
    "url",
    [
        "https://api.elevenlabs.io:99999",
        "https://api.elevenlabs.io:port",
        "https://api.eleven labs.io",
        "https://api.elevenlabs.io/v1",
    ],
)
def test_a_malformed_base_url_is_one_line_naming_the_setting(url: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings({**OK, "ELEVENLABS_BASE_URL": url})
    assert "ELEVENLABS_BASE_URL" in str(e.value) and "\n" not in str(e.value)


def test_every_form_of_the_key_is_redacted() -> None:
    from urllib.parse import quote

    from sync.log import redact, register_secret

    key = "sk_test+/=key_0123456789abcdef"
    register_secret(key)
    for form in (key, repr(key), json.dumps(key), quote(key, safe=""), quote(key)):
        assert key not in redact(f"x {form} y") and quote(key, safe="") not in redact(form)


def test_a_fifo_or_socket_named_md_is_skipped_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(para("a"), "utf-8")
    os.mkfifo(tmp_path / "pipe.md")
    from sync.local import read_folder

    assert [d.file for d in read_folder(tmp_path)] == ["a.md"]


def test_a_symlink_loop_is_one_line_not_a_traceback(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    (kit.dir / "loop.md").symlink_to(kit.dir / "loop.md")
    r = kit.kb("plan", "--dir", str(kit.dir))
    assert r.code == 5 and "Traceback" not in r.stderr and "loop.md" in r.stderr


def test_the_lock_file_is_removed_when_the_run_ends(kit: Kit, tmp_path: Path) -> None:
    kit.write("a.md", para("a"))
    assert kit.push().code == 0
    assert not list(tmp_path.glob("kb-sync-*.lock"))


def test_a_lock_file_that_cannot_be_opened_is_one_line(kit: Kit, tmp_path: Path) -> None:
    from sync.push import lock_path

    kit.write("a.md", para("a"))
    p = lock_path(kit.agent_id, "https://api.elevenlabs.io")
    p.mkdir()  # stands for a file this user may not open
    r = kit.push()
    assert r.code == 5 and "Traceback" not in r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("kb-sync: error:")]
    assert len(errors) == 1 and str(p) in errors[0]
    assert kit.writes() == []


def test_sigterm_ends_a_run_like_ctrl_c(tmp_path: Path) -> None:
    import subprocess
    import sys

    slow = (
        "import sys, threading, sync.cli as c\n"
        "def wait(env):\n"
        "    print('ready', flush=True)\n"
        "    threading.Event().wait(30)\n"
        "c.load_settings = wait\n"
        "sys.exit(c.main(['status']))\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(Path(__file__).parents[2])}
    p = subprocess.Popen(
        [sys.executable, "-c", slow],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    p.terminate()
    _, err = p.communicate(timeout=20)
    assert p.returncode == 130 and "kb-sync: interrupted" in err


def test_a_refused_connection_names_the_setting_host_and_port_at_once(tmp_path: Path) -> None:
    import socket

    from sync.testing import run_cli

    with socket.socket() as s:  # a port on loopback that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        "ELEVENLABS_API_KEY": CANARY_KEY,
        "ELEVENLABS_AGENT_ID": "agent_x",
        "ELEVENLABS_BASE_URL": f"http://127.0.0.1:{port}",
        "KB_SYNC_RECORD_DIR": str(tmp_path / "runs"),
    }
    clock = FakeClock()
    r = run_cli(["status"], env, clock=clock)
    assert r.code == 1
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("kb-sync: error:")]
    assert len(errors) == 1
    assert "ELEVENLABS_BASE_URL" in errors[0] and "connection refused" in errors[0]
    assert f"port {port}" in errors[0] and "127.0.0.1" in errors[0]
    assert clock.slept == 0  # no retries: a wrong URL is not a hiccup


@responses.activate
def test_401_names_the_key_setting() -> None:
    from sync.errors import AuthError

    responses.get(
        f"{BASE}/v1/convai/agents/a1",
        status=401,
        json={"detail": {"status": "invalid_api_key", "message": "Invalid API key"}},
    )
    with pytest.raises(AuthError) as e:
        Client(BASE, CANARY_KEY, clock=FakeClock()).get_agent("a1")
    assert "HTTP 401 invalid_api_key" in str(e.value) and "ELEVENLABS_API_KEY" in str(e.value)


def test_a_folder_without_md_files_is_said_first_and_the_guard_stays(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    kit.write("b.md", para("b"))
    assert kit.push().code == 0
    kit.remove("a.md")
    kit.remove("b.md")
    r = kit.kb("plan", "--dir", str(kit.dir))
    lines = r.stderr.splitlines()
    empty = next(i for i, ln in enumerate(lines) if "folder.empty" in ln)
    assert empty < next(i for i, ln in enumerate(lines) if "plan summary=" in ln)
    assert kit.push().code == 4  # the mass-delete guard still refuses


def test_a_large_patch_that_is_not_all_kept_is_partial_and_names_what_was_lost(kit: Kit) -> None:
    """[field] 100+ entries in one agent PATCH: answered 200, not all kept (API-NOTES)."""
    for i in range(103):
        kit.write(f"d{i:03}.md", para(f"d{i}", 3))
    r = kit.push("--concurrency", "8")
    assert r.code == 3, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("kb-sync: error:")]
    assert len(errors) == 1 and "3 not kept" in errors[0] and "d100.md" in errors[0]
    assert len(kit.managed_docs()) == 103  # nothing deleted
    # the line says why and what to do, and does not promise that the next run cleans up
    assert "kept 100 of the 103 entries" in errors[0] and "at most 100" in errors[0]
    assert "the next run cleans them up" not in errors[0]
    # the plan says it before anything is written
    plan = kit.kb("plan", "--dir", str(kit.dir))
    assert "note: the agent would hold 103 knowledge-base entries" in plan.stdout
    # the agent was read back: the run is stored complete with what the server kept, so a
    # rollback can undo it (an incomplete run would be refused: "whether it changed ... unknown")
    newest = json.loads(kit.kb("history", "--json").stdout)["runs"][0]
    assert newest["complete"]
    undo = kit.kb("rollback", "--allow-mass-delete")
    assert undo.code == 0, undo.stderr
    assert kit.backend.agent_kb(kit.agent_id) == []


@responses.activate
def test_a_timeout_names_the_setting_host_and_port_after_its_retries() -> None:
    import requests

    from sync.errors import TransportError

    responses.get(f"{BASE}/v1/convai/agents/a1", body=requests.Timeout("read timed out"))
    clock = FakeClock()
    with pytest.raises(TransportError) as e:
        Client(BASE, CANARY_KEY, clock=clock).get_agent("a1")
    assert str(e.value).startswith(
        "ELEVENLABS_BASE_URL=https://api.elevenlabs.io: timed out (host api.elevenlabs.io, "
        "port 443) on GET /v1/convai/agents/a1;"
    )
    assert len(responses.calls) > 1 and clock.slept > 0  # a timeout may pass: it is retried
