"""Rollback across several runs (found by an adversarial review): the content a later run
saved serves an older run's undo; a run's own entries decide whether it changed the agent;
what a skipped run uploaded is not left detached; the record's namespace says what it owned."""

from __future__ import annotations

import json
from typing import Any

from sync.testing import Killed

from .conftest import Kit, para
from .test_history import run_id_of
from .test_rollback_skips import detach, texts, two_runs


def test_rollback_to_an_older_run_restores_what_a_later_run_deleted(kit: Kit) -> None:
    kit.write("a.md", para("a1"))
    kit.write("b.md", para("b1"))
    assert kit.push().code == 0
    kit.write("a.md", para("a2"))
    p1 = run_id_of(kit.push().stdout)
    kit.write("b.md", para("b2"))  # a later run deletes b1, saving it in its own record
    assert kit.push().code == 0
    r = kit.kb("rollback", "--to", p1)
    assert r.code == 0, r.stderr
    assert texts(kit) == {"a.md": para("a1"), "b.md": para("b1")}


def test_a_persons_edit_during_a_run_that_changed_nothing_of_ours_does_not_hide_the_change(
    kit: Kit,
) -> None:
    kit.write("c.md", para("c1"))
    two_runs(kit)
    [c] = [e["id"] for e in kit.managed_kb() if kit.file_of(e) == "c.md"]
    detach(kit, c)
    kit.remove("c.md")
    kit.backend.set_index_behaviour("kb-sync:b.md", "failed")
    kit.write("b.md", para("b2"))
    faq = kit.backend.seed_document("Person FAQ", para("faq"))

    def person(backend: Any, call: Any) -> None:
        if call.method == "POST" and call.path.endswith("/knowledge-base/text"):
            name = str((call.request_json or {}).get("name", ""))
            if name.startswith("kb-sync:b.md") and faq not in [
                e["id"] for e in backend.agent_kb(kit.agent_id)
            ]:
                backend.attach(kit.agent_id, faq)

    kit.backend.after_request.append(person)
    assert kit.push().code == 3
    kit.backend.after_request.clear()
    kit.backend.behaviours.clear()
    rb = kit.kb("rollback")
    assert rb.code == 0, rb.stderr
    assert texts(kit)["a.md"] == para("a1"), rb.stdout


def test_a_skipped_complete_runs_upload_is_not_left_detached(kit: Kit) -> None:
    two_runs(kit)
    kit.backend.set_plan(max_patch_entries=2)  # the server keeps only 2: c.md is not kept
    kit.write("c.md", para("c1"))
    assert kit.push().code == 3
    kit.backend.set_plan(max_patch_entries=None)
    assert kit.kb("rollback").code == 0
    assert texts(kit) == {"a.md": para("a1"), "b.md": para("b1")}
    attached = {e["id"] for e in kit.backend.agent_kb(kit.agent_id)}
    assert {i for i in kit.managed_docs() if i not in attached} == set()


def test_a_rollback_uses_the_namespace_the_run_had(kit: Kit) -> None:
    kit.env["KB_SYNC_NAMESPACE"] = "prod"
    kit.write("a.md", para("a1"))
    kit.write("b.md", para("b1"))
    assert kit.push().code == 0
    kit.write("a.md", para("a2"))
    assert kit.push().code == 0
    laptop = {k: v for k, v in kit.env.items() if k != "KB_SYNC_NAMESPACE"}
    laptop["KB_SYNC_FOLDER"] = "prod"  # the history is found; the namespace was forgotten
    r = kit.kb("rollback", env=laptop)
    assert r.code == 0, r.stderr
    kb = {
        e["name"].split("#")[0]: kit.backend.docs[e["id"]].text
        for e in kit.backend.agent_kb(kit.agent_id)
    }
    assert kb == {"prod:a.md": para("a1"), "prod:b.md": para("b1")}


def test_after_a_kill_after_the_patch_and_a_converging_push_the_change_can_be_undone(
    kit: Kit,
) -> None:
    two_runs(kit)
    before = json.loads(kit.kb("history", "--json").stdout)["runs"][0]["id"]
    kit.write("b.md", para("b2"))

    def die(backend: Any, call: Any) -> None:
        if call.method == "PATCH" and "/agents/" in call.path and call.status == 200:
            raise Killed()

    kit.backend.after_request.append(die)
    assert kit.push().killed
    kit.backend.after_request.clear()
    assert kit.push().code == 0  # converges: b1 deleted, its content saved in this run
    r = kit.kb("rollback", "--to", before)  # the runbook: undo an earlier complete run
    assert r.code == 0, r.stderr
    assert texts(kit) == {"a.md": para("a1"), "b.md": para("b1")}


def test_rollback_to_before_an_adoption_brings_the_adopted_document_back(kit: Kit) -> None:
    legacy = kit.backend.seed_document("a.md", para("old"), attach_to=[kit.agent_id])
    kit.write("b.md", para("b0"))
    assert kit.push().code == 0
    kit.write("b.md", para("b1"))
    u = kit.push()
    assert u.code == 0
    kit.write("a.md", para("old"))
    assert kit.push("--adopt-legacy").code == 0  # a later run replaces the old script's a.md
    assert legacy not in kit.backend.docs
    r = kit.kb("rollback", "--to", run_id_of(u.stdout))
    assert r.code == 0, r.stderr
    on_agent = [kit.backend.docs[e["id"]].text for e in kit.backend.agent_kb(kit.agent_id)]
    assert sorted(on_agent) == sorted([para("old"), para("b0")])


def test_runs_that_only_cleaned_up_never_prune_the_last_real_change(kit: Kit) -> None:
    """KB_SYNC_HISTORY=2 and two runs in a row that changed nothing on the agent (each only
    deleted an orphan): stored as `cleanup` runs, they prune each other, never the last run
    that changed the agent; the history still holds at most 2."""
    kit.env["KB_SYNC_HISTORY"] = "2"
    kit.write("c.md", para("c1"))
    kit.write("d.md", para("d1"))
    two_runs(kit)
    for f in ("c.md", "d.md"):
        [x] = [e["id"] for e in kit.managed_kb() if kit.file_of(e) == f]
        detach(kit, x)
        kit.remove(f)
        assert kit.push().code == 0
    runs = json.loads(kit.kb("history", "--json").stdout)["runs"]
    assert [r["kind"] for r in runs] == ["cleanup", "push"]
    r = kit.kb("rollback")
    assert r.code == 0, r.stderr
    assert texts(kit)["a.md"] == para("a1")
