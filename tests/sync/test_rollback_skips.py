"""`kb-sync rollback` with no option undoes the newest stored run that changed the agent. A
newer run that provably did not (its PATCH failed and the agent is as the run found it, or
it kept every old version) is skipped with a note, not refused and not "undone": the runbook's
plain `kb-sync rollback` must work while an incident makes the cron fail."""

from __future__ import annotations

import json

from sync.emulator import server_error

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
    r = kit.kb("rollback")
    assert r.code == 0, r.stderr
    assert f"skipped stored run {listed[0]['id']}" in r.stdout
    assert "incomplete" in r.stdout and "as it found it" in r.stdout
    assert texts(kit) == {"a.md": para("a1"), "b.md": para("b1")}


def test_a_run_that_kept_every_old_version_is_skipped(kit: Kit) -> None:
    two_runs(kit)
    kit.backend.set_index_behaviour("kb-sync:b.md", "failed")
    kit.write("b.md", para("b2"))
    kept = kit.push()
    assert kept.code == 3, kept.stderr
    kit.backend.behaviours.clear()
    newest = json.loads(kit.kb("history", "--json").stdout)["runs"][0]
    assert newest["complete"]
    r = kit.kb("rollback", "--json")
    assert r.code == 0, r.stderr
    steps = json.loads(r.stdout)["rollback"]
    assert [s["id"] for s in steps["skipped_runs"]] == [newest["id"]]
    assert texts(kit) == {"a.md": para("a1"), "b.md": para("b1")}


def test_when_no_stored_run_changed_the_agent_there_is_nothing_to_roll_back(kit: Kit) -> None:
    kit.env["KB_SYNC_HISTORY"] = "1"  # the first push's run is pruned by the second
    kit.write("a.md", para("a1"))
    assert kit.push().code == 0
    kit.backend.set_index_behaviour("kb-sync:a.md", "failed")
    kit.write("a.md", para("a2"))
    assert kit.push().code == 3
    kit.backend.behaviours.clear()
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
