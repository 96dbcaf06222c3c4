"""The human result of a push says what happened to each file that did not get its new
version, and why, and what the deletes were: exit 3 must be readable without the log."""

from __future__ import annotations

import json

from sync.emulator import server_error
from sync.errors import ExitCode

from .conftest import Kit, ctrl_c_at_the_first_delete, para


def test_a_partial_push_names_each_file_that_kept_its_old_version_and_why(kit: Kit) -> None:
    for f in ("a.md", "b.md"):
        kit.write(f, para(f"{f} v1"))
    assert kit.push().code == 0
    kit.backend.set_index_behaviour("kb-sync:b.md", "failed")
    kit.write("a.md", para("a.md v2"))
    kit.write("b.md", para("b.md v2"))
    r = kit.push()
    assert r.code == ExitCode.PARTIAL, r.stderr
    assert "Applied: 1 attached, 1 kept their old version" in r.stdout
    lines = r.stdout.splitlines()
    [kept] = [ln for ln in lines if ln.strip().startswith("kept the old version of")]
    assert "b.md" in kept and "failed" in kept
    # the deletes, by what they were: a.md's old version; b.md's upload that was not attached
    assert "  deleted: 1 old version, 1 unattached upload" in lines
    kit.write("c.md", para("c.md v1"))
    kit.write("d.md", para("d.md v1"))
    kit.backend.set_index_behaviour("kb-sync:c.md", "failed")
    r = kit.push()
    lines = r.stdout.splitlines()
    assert any(ln.startswith("  not added: c.md: its new version's RAG index") for ln in lines)
    assert "  deleted: 2 unattached uploads" in lines  # b.md's and c.md's


def test_a_push_that_fails_after_its_plan_still_prints_the_plan_and_the_outcome(
    kit: Kit,
) -> None:
    kit.write("a.md", para("a v1"))
    assert kit.push().code == 0
    kit.write("a.md", para("a v2"))
    kit.backend.add_fault(server_error(500, method="PATCH", path="/agents/", times=None))
    r = kit.push()
    assert r.code == ExitCode.ERROR
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in r.stdout
    assert "Stopped (exit 1): " in r.stdout and "keeps its previous documents" in r.stdout
    j = kit.push("--json")
    assert j.code == ExitCode.ERROR
    payload = json.loads(j.stdout)  # one JSON object, as on success
    assert payload["plan"]["summary"]["change"] == 1
    assert payload["result"]["status"] == "failed" and payload["result"]["exit_code"] == 1
    assert "keeps its previous documents" in payload["result"]["error"]


def test_a_refused_push_prints_the_plan_it_refused(kit: Kit) -> None:
    for f in ("a.md", "b.md", "c.md"):
        kit.write(f, para(f))
    assert kit.push().code == 0
    for f in ("a.md", "b.md"):
        kit.remove(f)
    r = kit.push("--json")
    assert r.code == ExitCode.REFUSED
    payload = json.loads(r.stdout)
    assert payload["plan"]["summary"]["destroy"] == 2
    assert (
        payload["result"]["status"] == "refused"
        and "--allow-mass-delete" in payload["result"]["error"]
    )


def test_small_documents_skipped_or_refused_are_named_plainly(kit: Kit) -> None:
    kit.write("big.md", para("big"))
    kit.write("tiny.md", "# tiny\n")
    skip = kit.kb("plan", "--dir", str(kit.dir), "--small-docs", "skip")
    [line] = [ln for ln in skip.stdout.splitlines() if "tiny.md" in ln]
    assert line.strip() == "! tiny.md  (under 500 bytes)"  # no usage mode: it is not attached
    fail = kit.kb("plan", "--dir", str(kit.dir), "--small-docs", "fail")
    assert fail.code == ExitCode.BAD_INPUT
    assert fail.stderr.startswith(f"kb-sync: error: {kit.dir / 'tiny.md'}: under 500 bytes")


def test_an_interrupt_after_the_patch_says_the_agent_changed_and_closes_the_record(
    kit: Kit,
) -> None:
    kit.write("a.md", para("a v1"))
    assert kit.push().code == 0
    kit.write("a.md", para("a v2"))

    ctrl_c_at_the_first_delete(kit)
    r = kit.push()
    kit.backend.after_request.clear()
    assert r.code == 130
    [line] = [ln for ln in r.stderr.splitlines() if ln.startswith("kb-sync: interrupted")]
    assert "after the PATCH" in line and "points at the new" in line and "next run" in line
    records = sorted(kit.records.glob("*-push-*.json"), key=lambda p: p.stat().st_mtime_ns)
    rec = json.loads(records[-1].read_text())
    assert rec["status"] == "interrupted" and rec["exit_code"] == 130 and rec["finished_at"]
