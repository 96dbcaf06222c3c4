"""Regressions for bugs a review found (each reproduced first against the emulator)."""

from __future__ import annotations

import json

from sync.emulator import FaultRule, server_error
from sync.errors import ExitCode
from sync.naming import fingerprint

from .conftest import Kit, para


def names(kit: Kit) -> list[str]:
    return [e["name"] for e in kit.backend.agent_kb(kit.agent_id)]


def test_a_change_that_did_not_make_it_keeps_every_entry_as_it_was(kit: Kit) -> None:
    old, cur = para("old"), para("cur")
    kit.write("a.md", cur)
    kit.backend.seed_document(f"kb-sync:a.md#{fingerprint(old)}", old, attach_to=[kit.agent_id])
    kit.backend.seed_document(f"kb-sync:a.md#{fingerprint(cur)}", cur, attach_to=[kit.agent_id])
    before = names(kit)
    kit.backend.add_fault(server_error(503, method="POST", path="rag-index$", times=None))
    r = kit.push()
    assert r.code == ExitCode.PARTIAL
    assert names(kit) == before  # never left with only the older version


def test_transient_error_on_the_first_index_call_is_polled_again(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    kit.backend.add_fault(server_error(503, method="POST", path="rag-index$", times=6))
    r = kit.push()
    assert r.code == 0, r.stderr
    assert [kit.file_of(e) for e in kit.managed_kb()] == ["a.md"]


def test_an_orphan_whose_index_never_finishes_is_replaced_on_the_next_run(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    kit.backend.set_index_behaviour("kb-sync:a.md", "stuck", times=1)
    assert kit.push("--index-wait", "10").code == ExitCode.PARTIAL  # upload kept for reuse
    r = kit.push("--index-wait", "10")  # reused, still stuck: dropped
    assert r.code == ExitCode.PARTIAL and "a run later" in r.stderr
    assert kit.push("--index-wait", "10").code == 0  # uploaded afresh, indexed
    assert [kit.file_of(e) for e in kit.managed_kb()] == ["a.md"]


def test_create_recovery_never_takes_an_older_doc_of_the_same_name(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    assert kit.push().code == 0
    doc = kit.backend.docs[kit.managed_kb()[0]["id"]]
    doc.text = doc.text.replace("выручка", "ВЫРУЧКА", 1)  # same size, edited in the UI
    kit.backend.add_fault(server_error(503, method="POST", path=r"/knowledge-base/text$"))
    assert kit.push("--strict-hash").code == 0
    assert kit.kb("plan", "--dir", str(kit.dir), "--strict-hash", "--detailed-exitcode").code == 0
    live = kit.backend.docs[kit.managed_kb()[0]["id"]]
    assert live.text == (kit.dir / "a.md").read_text()


def test_rollback_leaves_unmanaged_entries_as_they_are_now(kit: Kit) -> None:
    faq = kit.backend.seed_document("FAQ", para("faq"), attach_to=[kit.agent_id])
    gone = kit.backend.seed_document("Old promo", para("promo"), attach_to=[kit.agent_id])
    kit.write("a.md", para("a"))
    assert kit.push().code == 0
    kit.write("a.md", para("a2"))
    assert kit.push().code == 0
    # a person then detaches FAQ and deletes the promo doc
    kit.backend.agents[kit.agent_id].body["conversation_config"]["agent"]["prompt"][
        "knowledge_base"
    ] = [e for e in kit.backend.agent_kb(kit.agent_id) if e["id"] not in (faq, gone)]
    del kit.backend.docs[gone]
    r = kit.kb("rollback", "--json")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["rollback"]["unmanaged_removed_since_stay_removed"]
    assert [e["id"] for e in kit.backend.agent_kb(kit.agent_id)] == [
        e["id"] for e in kit.managed_kb()
    ]
    assert kit.backend.docs[kit.managed_kb()[0]["id"]].text == para("a")


def test_adopt_legacy_with_skipped_small_docs_is_not_a_stale_plan(kit: Kit) -> None:
    kit.backend.seed_document("small.md", "tiny old", attach_to=[kit.agent_id], usage_mode="prompt")
    kit.write("small.md", "tiny")
    kit.write("big.md", para("big"))
    r = kit.push("--adopt-legacy", "--small-docs", "skip")
    assert r.code == 0, r.stderr
    assert "small.md" in names(kit)  # skipped: the legacy entry is left alone


def test_another_agents_docs_in_a_shared_namespace_are_not_orphans(kit: Kit) -> None:
    other = kit.backend.seed_agent(name="Agent B")
    kit.backend.seed_document("kb-sync:s.md#0123456789abcdef", para("s"), attach_to=[other])
    kit.write("a.md", para("a"))
    assert kit.push().code == 0
    r = kit.kb("plan", "--dir", str(kit.dir), "--detailed-exitcode")
    assert r.code == 0 and "cleanup" not in r.stdout
    assert len(kit.backend.agent_kb(other)) == 1


def test_force_delete_rechecks_dependents_right_before_forcing(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    kit.write("b.md", para("b"))
    assert kit.push().code == 0
    b_doc = next(e["id"] for e in kit.managed_kb() if kit.file_of(e) == "b.md")
    kit.backend.linger(10)
    other = kit.backend.seed_agent(name="Agent B")
    seen = {"deletes": 0}

    def attach_late(backend, call):  # type: ignore[no-untyped-def]
        if call.method == "DELETE" and call.status == 400:
            seen["deletes"] += 1
            if seen["deletes"] == 3:  # another agent attaches it while we wait out the linger
                backend.attach(other, b_doc)

    kit.backend.after_request.append(attach_late)
    kit.remove("b.md")
    r = kit.push()
    assert r.code == ExitCode.PARTIAL
    assert b_doc in kit.backend.docs
    assert [e["id"] for e in kit.backend.agent_kb(other)] == [b_doc]
    assert not any(c.method == "DELETE" and c.query.get("force") for c in kit.backend.calls)


def test_failure_after_the_patch_is_reported_as_partial(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    assert kit.push().code == 0
    kit.write("a.md", para("a2"))
    kit.backend.add_fault(
        FaultRule(method="GET", path=r"/content$", times=None, status=503, body={"detail": "x"})
    )
    r = kit.push()
    assert r.code in (0, ExitCode.PARTIAL)
    assert kit.backend.docs[kit.managed_kb()[0]["id"]].text == para("a2")
