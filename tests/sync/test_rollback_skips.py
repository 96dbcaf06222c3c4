"""`kb-sync rollback` with no option undoes the newest stored run that changed the agent. A
newer run that provably did not (its PATCH failed and the agent is as the run found it, or
it kept every old version) is skipped with a note, not refused and not "undone": the runbook's
plain `kb-sync rollback` must work while an incident makes the cron fail."""

from __future__ import annotations

import json
from pathlib import Path

from sync.emulator import server_error
from sync.emulator.agents import kb_of

from .conftest import Kit, para
from .test_history import run_id_of


def texts(kit: Kit) -> dict[str, str]:
    return {kit.file_of(e): kit.backend.docs[e["id"]].text for e in kit.managed_kb()}


def two_runs(kit: Kit) -> None:
    """v1 of a.md and b.md, then a.md v2: rollback is to bring back a.md v1."""
    kit.write("a.md", para("a1"))
    kit.write("b.md", para("b1"))
    assert kit.push().code == 0
    kit.write("a.md", para("a2"))
    assert kit.push().code == 0


def test_an_incomplete_run_that_left_the_agent_as_it_found_it_is_skipped(kit: Kit) -> None:
    two_runs(kit)
    kit.write("b.md", para("b2"))
    kit.backend.add_fault(server_error(500, method="PATCH", path="/agents/", times=None))
    failed = kit.push()
    assert failed.code == 1 and "keeps its previous documents" in failed.stderr
    kit.backend.clear_faults()
    listed = json.loads(kit.kb("history", "--json").stdout)["runs"]
    assert [r["complete"] for r in listed] == [False, True, True]
    # a person adds an entry of their own since: it says nothing of kb-sync's PATCH
    faq = kit.backend.seed_document("Person FAQ", para("faq"), attach_to=[kit.agent_id])
    r = kit.kb("rollback")
    assert r.code == 0, r.stderr
    assert f"skipped stored run {listed[0]['id']}" in r.stdout
    assert "incomplete" in r.stdout and "as it found it" in r.stdout
    assert texts(kit) == {"a.md": para("a1"), "b.md": para("b1")}
    assert faq in [e["id"] for e in kit.backend.agent_kb(kit.agent_id)]


def test_a_run_that_deleted_an_orphan_but_kept_the_agent_is_skipped_with_its_saved_content(
    kit: Kit,
) -> None:
    """It changed nothing on the agent but deleted an orphan (its content saved in its
    record): skipped, and the run undone past it gets that content when it needs it."""
    kit.write("c.md", para("c1"))
    two_runs(kit)  # c.md rides along in both: the second push's kb_before holds c1
    [c] = [e["id"] for e in kit.managed_kb() if kit.file_of(e) == "c.md"]
    detach(kit, c)  # a person takes c off the agent and the file goes: c is an orphan
    kit.remove("c.md")
    kit.backend.set_index_behaviour("kb-sync:b.md", "failed")
    kit.write("b.md", para("b2"))
    r = kit.push()
    assert r.code == 3 and "1 orphan" in r.stdout, r.stdout
    assert c not in kit.backend.docs
    kit.backend.behaviours.clear()
    newest = json.loads(kit.kb("history", "--json").stdout)["runs"][0]
    assert newest["complete"]  # it deleted something of the workspace: stored
    r = kit.kb("rollback", "--json")
    assert r.code == 0, r.stderr
    assert [s["id"] for s in json.loads(r.stdout)["rollback"]["skipped_runs"]] == [newest["id"]]
    # the second push is undone: c1 comes back from the content the skipped run saved
    assert texts(kit) == {"a.md": para("a1"), "b.md": para("b1"), "c.md": para("c1")}


def detach(kit: Kit, doc_id: str) -> None:
    """A person takes a document off the agent in the UI."""
    with kit.backend.lock:
        branch = kit.backend.branch(kit.backend.agents[kit.agent_id], None)
        kb = kb_of(branch)
        kb[:] = [e for e in kb if e["id"] != doc_id]
        kit.backend.commit(branch)


def test_when_no_stored_run_changed_the_agent_there_is_nothing_to_roll_back(kit: Kit) -> None:
    kit.env["KB_SYNC_HISTORY"] = "1"  # the first push's run is pruned by the second
    kit.write("a.md", para("a1"))
    kit.write("c.md", para("c1"))
    assert kit.push().code == 0
    [c] = [e["id"] for e in kit.managed_kb() if kit.file_of(e) == "c.md"]
    detach(kit, c)
    kit.remove("c.md")
    assert kit.push().code == 0  # deletes the orphan c: stored, the agent unchanged
    kit.backend.clear_calls()
    r = kit.kb("rollback")
    assert r.code == 0, r.stderr
    assert "Nothing to roll back" in r.stdout and "skipped stored run" in r.stdout
    assert [c for c in kit.backend.calls if c.method != "GET"] == []
    assert texts(kit) == {"a.md": para("a1")}


def test_an_incomplete_run_that_changed_the_agent_is_still_refused(kit: Kit) -> None:
    two_runs(kit)
    kit.write("b.md", para("b2"))
    # the PATCH lands, then storing "done" fails: the agent changed, the run is incomplete
    kit.backend.add_fault(
        server_error(500, method="PATCH", path=r"/knowledge-base/\w+$", times=None)
    )
    assert kit.push().code == 3
    kit.backend.clear_faults()
    r = kit.kb("rollback")
    assert r.code == 5 and "is incomplete" in r.stderr


def test_a_dry_run_lists_only_deletes_of_what_still_exists_and_names_the_guard(
    kit: Kit,
) -> None:
    kit.write("a.md", para("a1"))
    first = kit.push()
    kit.write("a.md", para("a2"))
    second = kit.push()
    [x] = [e["id"] for e in kit.managed_kb()]  # created by the second push
    kit.write("a.md", para("a3"))
    assert kit.push().code == 0 and x not in kit.backend.docs  # the third deleted it
    to_second = run_id_of(second.stdout)
    r = kit.kb("rollback", "--to", to_second, "--dry-run")
    assert r.code == 0, r.stderr
    assert f"delete {x}" not in r.stdout
    # undoing the first push removes every managed entry: the dry run says it would be refused
    r = kit.kb("rollback", "--to", run_id_of(first.stdout), "--dry-run")
    assert "would be refused" in r.stdout and "--allow-mass-delete" in r.stdout
    j = kit.kb("rollback", "--to", run_id_of(first.stdout), "--dry-run", "--json")
    assert "--allow-mass-delete" in json.loads(j.stdout)["rollback"]["would_be_refused"]
    real = kit.kb("rollback")
    assert real.code == 0 and "Record: " in real.stdout


def test_an_earlier_rollbacks_copy_edited_in_the_ui_is_not_reused(kit: Kit) -> None:
    two_runs(kit)
    second = json.loads(kit.kb("history", "--json").stdout)["runs"][0]["id"]
    assert kit.kb("rollback").code == 0  # a1 comes back as a copy
    [copy] = [e["id"] for e in kit.managed_kb() if kit.file_of(e) == "a.md"]
    other = kit.backend.seed_agent()
    kit.backend.attach(other, copy)  # another agent uses the copy: it survives...
    assert kit.kb("rollback").code == 3  # ...the rollback of the rollback (a2 again)
    doc = kit.backend.docs[copy]
    doc.text = doc.text.replace("a1", "x1", 1)  # ...and a person edits it, same size
    r = kit.kb("rollback", "--to", second)
    assert r.code == 0, r.stderr
    assert "reuse" not in r.stdout.splitlines()[0]
    assert texts(kit)["a.md"] == para("a1")  # the stored content, not the edit


def test_failing_runs_that_change_nothing_do_not_push_the_last_real_change_out(
    kit: Kit,
) -> None:
    """A cron failing every hour (a file whose index always fails): those runs change nothing
    on the agent and delete only their own uploads; they store no run, so they never prune
    the one a rollback needs."""
    kit.env["KB_SYNC_HISTORY"] = "2"
    two_runs(kit)
    kit.backend.set_index_behaviour("kb-sync:b.md", "failed")
    kit.write("b.md", para("b2"))
    for _ in range(3):
        r = kit.push()
        assert r.code == 3 and "history.not_stored" in r.stderr, r.stderr
    kit.backend.behaviours.clear()
    assert len(json.loads(kit.kb("history", "--json").stdout)["runs"]) == 2
    r = kit.kb("rollback")
    assert r.code == 0, r.stderr
    assert texts(kit) == {"a.md": para("a1"), "b.md": para("b1")}


def test_a_rollback_that_keeps_a_document_another_agent_uses_says_so_everywhere(
    kit: Kit,
) -> None:
    two_runs(kit)
    [a2] = [e["id"] for e in kit.managed_kb() if kit.file_of(e) == "a.md"]
    kit.backend.attach(kit.backend.seed_agent(), a2)  # another agent uses what we undo
    r = kit.kb("rollback", "--json")
    assert r.code == 3, r.stderr
    payload = json.loads(r.stdout)  # one object: the plan and what happened
    assert payload["rollback"]["delete_created"] == [a2]
    result = payload["result"]
    assert result["status"] == "partial" and result["exit_code"] == 3
    assert [d["outcome"] for d in result["deletions"]] == ["kept"]
    record = json.loads(Path(result["record"]).read_text(encoding="utf-8"))
    assert record["status"] == "partial" and record["exit_code"] == 3
    again = kit.kb("rollback")  # undo the rollback, in text: the kept doc is named
    assert again.code == 0, again.stderr
    two = kit.kb("rollback")
    assert two.code == 3 and "not deleted: kb-sync:a.md" in two.stdout and a2 in two.stdout


def test_a_skipped_runs_uploads_are_not_left_detached(kit: Kit) -> None:
    two_runs(kit)
    kit.write("b.md", para("b2"))
    kit.backend.add_fault(server_error(500, method="PATCH", path="/agents/", times=None))
    assert kit.push().code == 1  # its upload of b2 stays behind, attached nowhere
    kit.backend.clear_faults()
    left = [i for i, d in kit.managed_docs().items() if kit.backend.docs[i].text == para("b2")]
    assert len(left) == 1
    dry = kit.kb("rollback", "--dry-run")
    assert f"delete {left[0]}" in dry.stdout and "left by a skipped run" in dry.stdout
    assert kit.kb("rollback").code == 0
    attached = {e["id"] for e in kit.backend.agent_kb(kit.agent_id)}
    assert set(kit.managed_docs()) <= attached  # nothing of kb-sync's detached
    assert texts(kit) == {"a.md": para("a1"), "b.md": para("b1")}


def test_a_dry_run_with_nothing_to_undo_says_what_the_real_run_says(kit: Kit) -> None:
    two_runs(kit)
    second = json.loads(kit.kb("history", "--json").stdout)["runs"][0]["id"]
    assert kit.kb("rollback").code == 0
    dry = kit.kb("rollback", "--to", second, "--dry-run")  # undone already
    real = kit.kb("rollback", "--to", second)
    assert real.stdout.startswith("Nothing to roll back")
    assert "Nothing to roll back" in dry.stdout and "Dry run: nothing was changed." in dry.stdout
