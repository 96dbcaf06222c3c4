"""Nothing is deleted that a rollback could not bring back: a document whose content cannot be
read (to save it in the run's record) is kept, not deleted unsaved; a rollback's recreate that
fails ambiguously never adopts a same-name document someone else made."""

from __future__ import annotations

import json

import pytest

from sync.emulator import server_error
from sync.errors import ExitCode

from .conftest import Kit, ctrl_c_at_the_first_delete, para
from .test_rollback_skips import texts, two_runs


def test_a_superseded_document_whose_content_cannot_be_saved_is_kept(kit: Kit) -> None:
    kit.write("a.md", para("a1"))
    kit.write("b.md", para("b1"))
    assert kit.push().code == 0
    [a1] = [e["id"] for e in kit.managed_kb() if kit.file_of(e) == "a.md"]
    kit.write("a.md", para("a2"))
    kit.backend.add_fault(server_error(500, method="GET", path=rf"/{a1}/content$", times=None))
    r = kit.push()
    kit.backend.clear_faults()
    assert r.code == ExitCode.PARTIAL, r.stderr  # attached, but the old one is kept
    assert a1 in kit.backend.docs
    assert "not deleted: kb-sync:a.md" in r.stdout and "could not be saved" in r.stdout
    assert texts(kit)["a.md"] == para("a2")
    rb = kit.kb("rollback")
    assert rb.code == 0, rb.stderr
    assert texts(kit) == {"a.md": para("a1"), "b.md": para("b1")}


def test_an_ambiguous_recreate_never_adopts_a_copy_a_person_edited(kit: Kit) -> None:
    two_runs(kit)
    second = json.loads(kit.kb("history", "--json").stdout)["runs"][0]["id"]
    assert kit.kb("rollback").code == 0
    [copy] = [e["id"] for e in kit.managed_kb() if kit.file_of(e) == "a.md"]
    kit.backend.attach(kit.backend.seed_agent(), copy)
    assert kit.kb("rollback").code == 3
    doc = kit.backend.docs[copy]
    doc.text = doc.text.replace("a1", "x1", 1)  # a person's same-size UI edit
    kit.backend.add_fault(server_error(500, method="POST", path=r"/knowledge-base/text$", times=1))
    r = kit.kb("rollback", "--to", second)
    kit.backend.clear_faults()
    assert r.code == 0, r.stderr
    assert texts(kit)["a.md"] == para("a1")


def test_a_rollback_that_fails_after_its_patch_says_the_agent_changed(kit: Kit) -> None:
    two_runs(kit)
    # the PATCH lands; storing the rollback's own run ("done") then fails
    kit.backend.add_fault(
        server_error(500, method="PATCH", path=r"/knowledge-base/\w+$", times=None)
    )
    r = kit.kb("rollback")
    kit.backend.clear_faults()
    assert texts(kit)["a.md"] == para("a1")  # the agent was changed
    assert r.code == ExitCode.PARTIAL, r.stderr
    assert "already points at the restored documents" in r.stderr
    [rec] = [json.loads(p.read_text()) for p in kit.records.glob("*-rollback-*.json")]
    assert rec["status"] == "failed" and rec["exit_code"] == 3


def test_a_rollback_that_fails_at_its_patch_closes_its_record(kit: Kit) -> None:
    two_runs(kit)
    kit.backend.add_fault(server_error(500, method="PATCH", path="/agents/", times=None))
    r = kit.kb("rollback")
    kit.backend.clear_faults()
    assert r.code == ExitCode.ERROR and texts(kit)["a.md"] == para("a2")
    [rec] = [json.loads(p.read_text()) for p in kit.records.glob("*-rollback-*.json")]
    assert rec["status"] == "failed" and rec["exit_code"] == 1


@pytest.mark.parametrize(
    "rec",
    [
        {"kb_before": None},
        {"kb_before": [{"id": "x"}], "created": [{"name": "n"}]},
        {"kb_before": "abc"},
        {"kb_before": [{"id": "x", "name": "n"}], "saved": "x"},
    ],
)
def test_a_malformed_run_record_is_one_line(kit: Kit, rec: dict[str, object]) -> None:
    kit.write("a.md", para("a1"))
    assert kit.push().code == 0
    p = kit.dir.parent / "bad.json"
    p.write_text(json.dumps({"agent_id": kit.agent_id, **rec}))
    r = kit.kb("rollback", "--record", str(p))
    assert r.code == ExitCode.BAD_INPUT, r.stderr
    assert r.stderr.startswith(f"kb-sync: error: {p}: not a kb-sync run record")
    assert "Traceback" not in r.stderr


def test_an_interrupt_after_a_rollbacks_patch_says_the_agent_changed(kit: Kit) -> None:
    two_runs(kit)
    ctrl_c_at_the_first_delete(kit)
    r = kit.kb("rollback")
    kit.backend.after_request.clear()
    assert r.code == 130 and texts(kit)["a.md"] == para("a1")
    [line] = [ln for ln in r.stderr.splitlines() if ln.startswith("kb-sync: interrupted")]
    assert "after the PATCH" in line and "restored documents" in line
    [rec] = [json.loads(p.read_text()) for p in kit.records.glob("*-rollback-*.json")]
    assert rec["status"] == "interrupted" and rec["exit_code"] == 130
