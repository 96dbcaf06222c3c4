"""Rollback after deletion, status and verify, against the in-process emulator."""

from __future__ import annotations

import json
import re

from sync.errors import ExitCode
from sync.testing import is_upload

from .conftest import Kit, para


def seed(kit: Kit) -> list[dict[str, object]]:
    kit.backend.seed_document("Manual FAQ", para("faq"), attach_to=[kit.agent_id])
    for q in ("2025-Q1", "2025-Q2"):
        kit.write(f"{q}.md", f"# {q}\n\n" + para(q))
    assert kit.push().code == 0
    return kit.backend.agent_kb(kit.agent_id)


def contents(kit: Kit) -> list[tuple[str, str, str]]:
    return [
        (e["name"], kit.backend.docs[e["id"]].text, e["usage_mode"])
        for e in kit.backend.agent_kb(kit.agent_id)
    ]


def test_rollback_restores_previous_kb_even_after_deletion(kit: Kit) -> None:
    seed(kit)
    before = contents(kit)
    old_ids = [e["id"] for e in kit.managed_kb()]
    kit.write("2025-Q1.md", "# 2025-Q1 wrong numbers\n\n" + para("wrong"))
    kit.remove("2025-Q2.md")
    pushed = kit.push()
    assert pushed.code == 0
    assert all(i not in kit.backend.docs for i in old_ids)  # superseded docs are gone

    kit.backend.clear_calls()
    dry = kit.kb("rollback", "--dry-run")
    assert dry.code == 0 and "2 to recreate" in dry.stdout
    assert "Dry run: nothing was changed." in dry.stdout
    assert kit.writes() == []
    r = kit.kb("rollback")
    assert r.code == 0, r.stderr
    assert contents(kit) == before  # same names, same text, same order, same modes
    for e in kit.managed_kb():
        assert kit.backend.index_status(e["id"]) == "succeeded"
    # what the undone run created is deleted
    assert len(kit.managed_docs()) == 2
    # a second rollback of the same run (--to its id) changes nothing and uploads nothing
    found = re.search(r"-push-([0-9a-f]+)\.json", pushed.stdout)
    assert found, pushed.stdout
    run_id = found[1]
    again = kit.kb("rollback", "--dry-run", "--to", run_id)
    assert "0 to recreate, 2 to reuse" in again.stdout, again.stdout
    kit.backend.clear_calls()
    assert kit.kb("rollback", "--to", run_id).code == 0
    assert contents(kit) == before
    assert not [c for c in kit.backend.calls if is_upload(c)]
    assert len(kit.managed_docs()) == 2
    # and the folder, re-pushed, would bring the change back (the record is not state)
    assert "1 to change" in kit.push("--dry-run").stdout


def test_rollback_of_a_named_record_and_wrong_agent(kit: Kit) -> None:
    seed(kit)
    kit.write("2025-Q1.md", "# changed\n\n" + para("c"))
    assert kit.push().code == 0
    rec = sorted(kit.records.glob("*-push-*.json"))[-1]
    other = kit.backend.seed_agent()
    r = kit.kb("rollback", "--record", str(rec), env=dict(kit.env, ELEVENLABS_AGENT_ID=other))
    assert r.code == ExitCode.BAD_INPUT
    assert kit.kb("rollback", "--record", str(rec)).code == 0


def test_rollback_without_a_record(kit: Kit) -> None:
    r = kit.kb("rollback")
    assert r.code == ExitCode.BAD_INPUT
    assert kit.writes() == []


def test_status_lists_entries_owner_index_and_quota(kit: Kit) -> None:
    seed(kit)
    kit.backend.clear_calls()
    r = kit.kb("status", "--json")
    data = json.loads(r.stdout)
    owners = [e["owner"] for e in data["entries"]]
    assert owners == ["unmanaged", "kb-sync", "kb-sync"]
    assert {e["index"] for e in data["entries"]} == {"succeeded"}
    assert data["quota"]["total_used_bytes"] == kit.backend.used_bytes()
    assert "Workspace RAG quota" in kit.kb("status").stdout
    assert kit.writes() == []


def test_verify_passes_after_push_and_fails_on_drift(kit: Kit) -> None:
    seed(kit)
    ok = kit.kb("verify", "--dir", str(kit.dir), "--json")
    assert ok.code == 0, ok.stdout
    report = json.loads(ok.stdout)
    assert report["ok"] and [u["name"] for u in report["unmanaged"]] == ["Manual FAQ"]
    assert any("RAG returns the current text" in c["check"] for c in report["checks"])
    # a person edits a document in the UI: verify catches it
    doc = kit.backend.docs[kit.managed_kb()[0]["id"]]
    doc.text = doc.text.replace("2025-Q1", "2099-Q9")
    bad = kit.kb("verify", "--dir", str(kit.dir))
    assert bad.code == ExitCode.VERIFY_FAILED
    assert bad.stdout.startswith("FAIL")


def test_verify_flags_duplicates_and_unindexed(kit: Kit) -> None:
    seed(kit)
    e = kit.managed_kb()[0]
    dup = kit.backend.seed_document(e["name"], kit.backend.docs[e["id"]].text, indexed_models=())
    kit.backend.attach(kit.agent_id, dup)
    r = kit.kb("verify", "--dir", str(kit.dir), "--json")
    assert r.code == ExitCode.VERIFY_FAILED
    failed = [c["check"] for c in json.loads(r.stdout)["checks"] if not c["ok"]]
    assert "no duplicate entries" in failed


def test_verify_counts_the_old_scripts_uploads_next_to_a_managed_entry_as_duplicates(
    kit: Kit,
) -> None:
    """Go-live promises no duplicates: the old script's copy of a file (named after the file or
    its stem) attached next to kb-sync's is one, and the line says how to remove it."""
    kit.write("2025-Q1.md", para("q1"))
    assert kit.push().code == 0
    kit.backend.seed_document("2025-Q1", para("old q1"), attach_to=[kit.agent_id])
    kit.backend.seed_document("Unrelated", para("u"), attach_to=[kit.agent_id])
    r = kit.kb("verify", "--dir", str(kit.dir))
    assert r.code == ExitCode.VERIFY_FAILED, r.stdout
    [line] = [ln for ln in r.stdout.splitlines() if "no duplicate entries" in ln]
    assert line.startswith("FAIL") and "2025-Q1" in line and "--adopt-legacy" in line
    assert "Unrelated" not in line
    assert kit.push("--adopt-legacy").code == 0
    assert kit.kb("verify", "--dir", str(kit.dir)).code == 0
