"""A well-formed but wrong-shaped 2xx answer is the server misbehaving: one line naming the
endpoint and what is wrong (exit 1, nothing written), never a traceback, never read as empty."""

from __future__ import annotations

from typing import Any

import pytest

from sync.emulator import FaultRule

from .conftest import Kit, para

LISTING = r"/v1/convai/knowledge-base$"
FIX = "check ELEVENLABS_BASE_URL points at the ElevenLabs API"


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    errors = [ln for ln in stderr.splitlines() if ln.startswith("kb-sync: error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def _answer(kit: Kit, method: str, path: str, body: dict[str, Any], times: int | None) -> None:
    kit.backend.add_fault(FaultRule(method, path, times=times, status=200, body=body))


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"documents": "nope", "has_more": False}, "has 'documents' as a string, not a list"),
        ({}, "has no list 'documents'"),
        ({"documents": []}, "has no boolean 'has_more'"),
        ({"documents": ["x"], "has_more": False}, "documents[0] is a string, not an object"),
        ({"documents": [{"name": "a"}], "has_more": False}, "documents[0] has no string 'id'"),
        ({"documents": [], "has_more": True}, "has_more is true but no next_cursor"),
    ],
    ids=["documents-a-string", "no-documents", "no-has-more", "item-a-string", "item-no-id", "cut"],
)
def test_a_wrong_shaped_listing_is_one_line_naming_the_endpoint(
    kit: Kit, body: dict[str, Any], said: str
) -> None:
    kit.write("a.md", para("a"))
    _answer(kit, "GET", LISTING, body, times=None)
    r = kit.kb("plan", "--dir", str(kit.dir))
    line = _one_error_line(r.stderr)
    assert r.code == 1, r.stderr
    assert "GET /v1/convai/knowledge-base" in line and said in line and FIX in line, line


def test_a_listing_without_documents_never_makes_a_push_create_a_second_folder(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    assert kit.push().code == 0
    folders = [d for d in kit.backend.docs.values() if d.type == "folder"]
    kit.write("a.md", para("a2"))
    _answer(kit, "GET", LISTING, {}, times=None)
    kit.backend.calls.clear()
    r = kit.push()
    line = _one_error_line(r.stderr)
    assert r.code == 1 and "'documents'" in line, r.stderr
    assert [c for c in kit.backend.calls if c.method != "GET"] == []  # not even a folder
    assert [d for d in kit.backend.docs.values() if d.type == "folder"] == folders


def test_a_create_answer_without_an_id_is_one_line_naming_the_endpoint(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    _answer(kit, "POST", r"/knowledge-base/text$", {"weird": 1}, times=None)
    r = kit.push()
    # the upload failed: the new file is not added, the result says why (exit 3)
    assert r.code == 3, r.stderr
    [kept] = [ln for ln in r.stdout.splitlines() if "not added: a.md" in ln]
    assert "POST /v1/convai/knowledge-base/text" in kept and "has no string 'id'" in kept, kept
    assert "Traceback" not in r.stderr
    assert kit.managed_kb() == []  # the agent was not changed


def test_a_folder_create_answer_without_an_id_is_one_line(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    _answer(kit, "POST", r"/knowledge-base/folder$", {"name": "x"}, times=None)
    r = kit.push()
    line = _one_error_line(r.stderr)
    assert r.code == 1 and "POST /v1/convai/knowledge-base/folder" in line, line
    assert "has no string 'id'" in line and kit.managed_kb() == []


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"conversation_config": "x"}, "has 'conversation_config' as a string, not an object"),
        (
            {"conversation_config": {"agent": {"prompt": {"knowledge_base": ["a"]}}}},
            "conversation_config.agent.prompt.knowledge_base[0] is a string, not an object",
        ),
        (
            {"conversation_config": {"agent": {"prompt": {"knowledge_base": [{"name": "a"}]}}}},
            "conversation_config.agent.prompt.knowledge_base[0] has no string 'id'",
        ),
        (
            {"conversation_config": {"agent": {"prompt": 7}}},
            "conversation_config.agent has 'prompt' as a number",
        ),
    ],
    ids=["config-a-string", "entry-a-string", "entry-no-id", "prompt-a-number"],
)
def test_a_wrong_shaped_agent_is_one_line(kit: Kit, body: dict[str, Any], said: str) -> None:
    kit.write("a.md", para("a"))
    path = f"/v1/convai/agents/{kit.agent_id}$"
    _answer(kit, "GET", path, {"agent_id": kit.agent_id, "name": "A", **body}, times=None)
    for command in ("plan", "status"):
        argv = (command, "--dir", str(kit.dir)) if command == "plan" else (command,)
        r = kit.kb(*argv)
        line = _one_error_line(r.stderr)
        assert r.code == 1 and f"GET /v1/convai/agents/{kit.agent_id}" in line, line
        assert said in line, line


def test_status_refuses_a_wrong_shaped_quota_and_index_answer(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    assert kit.push().code == 0
    _answer(kit, "GET", r"/knowledge-base/rag-index$", {"total_used_bytes": "lots"}, times=1)
    r = kit.kb("status")
    line = _one_error_line(r.stderr)
    assert r.code == 1 and "GET /v1/convai/knowledge-base/rag-index" in line, line
    assert "has 'total_used_bytes' as a string, not an integer" in line, line
    # one entry's index answer: the status reports that entry's index as unknown, like a 5xx
    _answer(kit, "GET", r"/knowledge-base/[^/]+/rag-index$", {"indexes": [3]}, times=1)
    r = kit.kb("status", "--json")
    assert r.code == 0 and "Traceback" not in r.stderr, r.stderr
    assert [e["index"] for e in r.json()["entries"]] == ["unknown (bad_response)"]


def test_verify_fails_the_rag_probe_of_an_answer_without_chunks(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    assert kit.push().code == 0
    _answer(kit, "POST", r"/rag-query$", {"retrieval_query": "q"}, times=None)
    r = kit.kb("verify", "--dir", str(kit.dir), "--json")
    assert r.code == 6 and "Traceback" not in r.stderr, r.stderr
    failed = [c for c in r.json()["checks"] if not c["ok"]]
    assert [c["check"] for c in failed] == ["a.md: RAG returns the current text"]
    assert "rag-query has no list 'chunks'" in failed[0]["detail"], failed


def test_a_wrong_shaped_dependents_answer_keeps_the_superseded_doc(kit: Kit) -> None:
    """A delete refused with ``document_has_dependent_agents`` reads the dependents: a wrong
    answer there must not be taken for "nobody uses it" (never force-deleted)."""
    kit.write("a.md", para("a"))
    assert kit.push().code == 0
    old = {e["id"] for e in kit.managed_kb()}
    kit.write("a.md", para("a2"))
    _answer(kit, "GET", r"/dependent-agents$", {"agents": "none", "has_more": False}, times=None)
    (old_id,) = old
    kit.backend.add_fault(
        FaultRule(
            "DELETE",
            f"/knowledge-base/{old_id}$",
            times=None,
            status=409,
            body={"detail": {"status": "document_has_dependent_agents", "message": "in use"}},
        )
    )
    r = kit.push()
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    assert old <= set(kit.backend.docs), "a doc whose users are unknown was deleted"
    assert r.code == 3, r.stderr


@pytest.mark.parametrize(
    ("method", "path", "body", "said"),
    [
        ("POST", r"/run-tests$", {"weird": 1}, "has no string 'id'"),
        ("POST", r"/agent-testing/create$", {"name": "t"}, "has no string 'id'"),
        ("GET", r"/agent-testing$", {"tests": [{"id": 1}], "has_more": False}, "tests[0] has"),
    ],
    ids=["run", "create", "listing"],
)
def test_verify_agent_tests_refuse_a_wrong_shaped_answer(
    kit: Kit, method: str, path: str, body: dict[str, Any], said: str
) -> None:
    kit.write("a.md", para("a"))
    assert kit.push().code == 0
    questions = kit.dir.parent / "q.toml"
    questions.write_text('[[question]]\nask = "a?"\nexpect = ["Раздел"]\n', encoding="utf-8")
    _answer(kit, method, path, body, times=None)
    r = kit.kb("verify", "--dir", str(kit.dir), "--questions", str(questions), "--agent-tests")
    line = _one_error_line(r.stderr)
    assert r.code == 1 and said in line, line
    assert "/v1/convai/agent-testing" in line or "/run-tests" in line, line
