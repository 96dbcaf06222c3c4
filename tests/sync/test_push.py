"""kb-sync push against the in-process emulator: every behaviour of the push contract."""

from __future__ import annotations

import json
import math

import pytest

from sync.emulator import FaultRule, rate_limited, server_error
from sync.errors import ExitCode
from sync.testing import is_upload

from .conftest import Kit, para


def seed_three(kit: Kit) -> None:
    for q in ("2025-Q1", "2025-Q2", "2025-Q3"):
        kit.write(f"{q}.md", f"# {q}\n\n" + para(q))
    assert kit.push().code == 0
    kit.backend.clear_calls()


def test_first_push_creates_indexes_attaches_and_is_stable(kit: Kit) -> None:
    manual = kit.backend.seed_document("FAQ (manual)", para("faq"), attach_to=[kit.agent_id])
    seed_three(kit)
    kb = kit.backend.agent_kb(kit.agent_id)
    assert kb[0]["id"] == manual  # unmanaged entry kept its place
    assert [kit.file_of(e) for e in kb[1:]] == ["2025-Q1.md", "2025-Q2.md", "2025-Q3.md"]
    for e in kb[1:]:
        assert kit.backend.index_status(e["id"]) == "succeeded"
        assert kit.backend.docs[e["id"]].text == (kit.dir / kit.file_of(e)).read_text()
    # zero churn: plain and strict both find nothing and write nothing
    for extra in ((), ("--strict-hash",)):
        r = kit.push(*extra)
        assert r.code == 0
        assert "0 to add, 0 to change, 0 to destroy" in r.stdout
    assert kit.writes() == []


def test_dry_run_makes_no_write_request(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    r = kit.push("--dry-run")
    assert r.code == 0
    assert "1 to add, 0 to change, 0 to destroy" in r.stdout
    assert kit.writes() == []
    assert kit.backend.agent_kb(kit.agent_id) == []


def test_plan_detailed_exitcode(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    assert kit.kb("plan", "--dir", str(kit.dir), "--detailed-exitcode").code == 2
    assert kit.kb("plan", "--dir", str(kit.dir)).code == 0
    assert kit.push().code == 0
    assert kit.kb("plan", "--dir", str(kit.dir), "--detailed-exitcode").code == 0


def test_plan_json_is_machine_readable(kit: Kit) -> None:
    seed_three(kit)
    kit.write("2025-Q2.md", "# changed\n\n" + para("new"))
    kit.remove("2025-Q3.md")
    kit.write("2026-Q1.md", para("q"))
    data = json.loads(kit.kb("plan", "--dir", str(kit.dir), "--json").stdout)
    assert data["plan"]["summary"]["add"] == 1
    assert data["plan"]["summary"]["change"] == 1
    assert data["plan"]["summary"]["destroy"] == 1
    actions = {i["file"]: i["action"] for i in data["plan"]["items"]}
    assert actions == {
        "2025-Q1.md": "unchanged",
        "2025-Q2.md": "update",
        "2025-Q3.md": "delete",
        "2026-Q1.md": "create",
    }


def test_update_replaces_in_place_then_deletes_old(kit: Kit) -> None:
    seed_three(kit)
    old = {kit.file_of(e): e["id"] for e in kit.managed_kb()}
    kit.write("2025-Q2.md", "# 2025-Q2 revised\n\n" + para("revised"))
    r = kit.push()
    assert r.code == 0, r.stderr
    kb = kit.managed_kb()
    assert [kit.file_of(e) for e in kb] == ["2025-Q1.md", "2025-Q2.md", "2025-Q3.md"]
    new_id = kb[1]["id"]
    assert new_id != old["2025-Q2.md"]
    assert old["2025-Q2.md"] not in kit.backend.docs  # superseded version deleted
    assert kit.backend.index_status(new_id) == "succeeded"
    # order of writes: create, index, one PATCH, then DELETE
    kinds = [(c.method, c.path.rsplit("/", 1)[-1]) for c in kit.writes() if c.status < 400]
    patch_at = next(i for i, k in enumerate(kinds) if k[0] == "PATCH")
    assert kinds[0] == ("POST", "text")
    assert all(k[0] != "DELETE" for k in kinds[:patch_at])
    assert sum(1 for c in kit.writes() if c.method == "PATCH" and "/agents/" in c.path) == 1
    assert kinds[-1][0] == "DELETE"
    patch = next(c for c in kit.backend.calls if c.method == "PATCH")
    sent = patch.request_json["conversation_config"]["agent"]["prompt"]["knowledge_base"]
    assert [e["id"] for e in sent] == [e["id"] for e in kit.backend.agent_kb(kit.agent_id)]


def test_same_size_edit_in_the_ui_is_caught_only_by_strict_hash(kit: Kit) -> None:
    seed_three(kit)
    entry = kit.managed_kb()[0]
    doc = kit.backend.docs[entry["id"]]
    edited = doc.text.replace("выручка", "ВЫРУЧКА", 1)
    assert len(edited.encode()) == len(doc.text.encode())
    doc.text = edited  # a person edited the content in the ElevenLabs UI
    assert "0 to change" in kit.push("--dry-run").stdout
    r = kit.push("--strict-hash")
    assert r.code == 0
    assert "1 to change" in r.stdout
    fresh = kit.managed_kb()[0]
    assert kit.backend.docs[fresh["id"]].text == (kit.dir / "2025-Q1.md").read_text()


def test_local_same_size_edit_is_caught_without_strict(kit: Kit) -> None:
    seed_three(kit)
    p = kit.dir / "2025-Q1.md"
    text = p.read_text()
    p.write_text(text.replace("1", "7", 1))
    assert "1 to change" in kit.push("--dry-run").stdout


def test_legacy_html_content_does_not_churn_under_strict(kit: Kit) -> None:
    kit.write("a.md", "# Title\n\nFirst paragraph with words.\n\n" + para("a"))
    assert kit.push().code == 0
    doc = kit.backend.docs[kit.managed_kb()[0]["id"]]
    doc.content_format = "html"  # the server returns the same document as HTML
    r = kit.push("--strict-hash")
    assert "0 to add, 0 to change, 0 to destroy" in r.stdout


def test_small_docs_default_to_prompt_mode(kit: Kit) -> None:
    kit.write("tiny.md", "# Короткая заметка\n\nВсего несколько слов.")
    kit.write("big.md", para("big"))
    r = kit.push()
    assert r.code == 0
    modes = {kit.file_of(e): e["usage_mode"] for e in kit.managed_kb()}
    assert modes == {"big.md": "auto", "tiny.md": "prompt"}
    assert "doc.small" in r.stderr


def test_small_docs_fail_policy_refuses_before_any_write(kit: Kit) -> None:
    kit.write("tiny.md", "tiny")
    r = kit.push("--small-docs", "fail")
    assert r.code == ExitCode.BAD_INPUT
    assert kit.backend.calls == []


def test_small_docs_skip_policy_leaves_them_out(kit: Kit) -> None:
    kit.write("tiny.md", "tiny")
    kit.write("big.md", para("big"))
    assert kit.push("--small-docs", "skip").code == 0
    assert [kit.file_of(e) for e in kit.managed_kb()] == ["big.md"]


def test_index_pending_at_deadline_keeps_old_version(kit: Kit) -> None:
    seed_three(kit)
    old = kit.managed_kb()
    kit.backend.set_index_behaviour("kb-sync:2025-Q2.md", "stuck")
    kit.write("2025-Q2.md", "# new\n\n" + para("stuck"))
    r = kit.push("--index-wait", "20")
    assert r.code == ExitCode.PARTIAL
    assert kit.managed_kb() == old  # agent untouched: old version kept
    assert "index still processing after 20s" in r.stderr
    # the pending upload is left for the next run, which reuses it once indexed
    for idx in kit.backend.indexes.values():  # indexing finally completes on the server
        if idx.fate == "stuck":
            idx.fate = "succeed"
    kit.backend.clear_calls()
    r = kit.push()
    creates = [c for c in kit.backend.calls if is_upload(c)]
    assert creates == []  # reused, not uploaded again
    assert r.code == 0


def test_index_failed_once_is_recomputed(kit: Kit) -> None:
    kit.backend.set_index_behaviour("kb-sync:a.md", "failed", times=1)
    kit.write("a.md", para("a"))
    r = kit.push()
    assert r.code == 0, r.stderr
    assert "index.recompute" in r.stderr
    assert kit.backend.index_status(kit.managed_kb()[0]["id"]) == "succeeded"


def test_index_failing_always_gives_up_and_keeps_old(kit: Kit) -> None:
    seed_three(kit)
    old = kit.managed_kb()
    kit.backend.set_index_behaviour("kb-sync:2025-Q1.md", "failed")
    kit.write("2025-Q1.md", "# new\n\n" + para("fail"))
    r = kit.push()
    assert r.code == ExitCode.PARTIAL
    assert kit.managed_kb() == old
    # the failed upload is not left behind
    names = [d.name for d in kit.managed_docs().values()]
    assert len(names) == 3


def test_rag_limit_exceeded_attaches_nothing_unindexed_and_reports_quota(kit: Kit) -> None:
    seed_three(kit)
    before = kit.backend.agent_kb(kit.agent_id)
    kit.backend.set_quota(kit.backend.used_bytes() + 100)
    kit.write("2025-Q1.md", "# new\n\n" + para("x"))
    r = kit.push()
    assert r.code == ExitCode.REFUSED  # pre-flight sees it before any upload
    assert "quota.preflight" in r.stderr
    assert kit.writes() == []
    assert kit.backend.agent_kb(kit.agent_id) == before


def test_rag_limit_exceeded_during_indexing(kit: Kit) -> None:
    """The pre-flight passes (the overview lags), the server still says rag_limit_exceeded."""
    seed_three(kit)
    before = kit.backend.agent_kb(kit.agent_id)

    def shrink_after_preflight(backend, call):  # type: ignore[no-untyped-def]
        if call.method == "GET" and call.path.endswith("/knowledge-base/rag-index"):
            backend.set_quota(backend.used_bytes() + 10)  # someone else used the space

    kit.backend.after_request.append(shrink_after_preflight)
    kit.write("2025-Q1.md", "# new\n\n" + para("x"))
    r = kit.push()
    assert r.code == ExitCode.PARTIAL
    assert "quota.exceeded" in r.stderr
    assert kit.backend.agent_kb(kit.agent_id) == before


def test_removed_file_is_detached_and_deleted(kit: Kit) -> None:
    seed_three(kit)
    gone = kit.managed_kb()[2]["id"]
    kit.remove("2025-Q3.md")
    assert kit.push().code == 0
    assert gone not in kit.backend.docs
    assert [kit.file_of(e) for e in kit.managed_kb()] == ["2025-Q1.md", "2025-Q2.md"]


def test_mass_delete_guard(kit: Kit) -> None:
    seed_three(kit)
    for q in ("2025-Q1", "2025-Q2"):
        kit.remove(f"{q}.md")
    r = kit.push()
    assert r.code == ExitCode.REFUSED
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("kb-sync: error:") and "--allow-mass-delete" in last
    assert kit.writes() == []
    assert kit.push("--allow-mass-delete").code == 0
    assert len(kit.managed_kb()) == 1


def test_lingering_dependency_is_retried_then_forced(kit: Kit) -> None:
    seed_three(kit)
    kit.backend.linger(10)
    kit.remove("2025-Q3.md")
    r = kit.push()
    assert r.code == 0, r.stderr
    assert "force-deleted" in r.stderr
    assert len(kit.managed_docs()) == 2


def test_lingering_dependency_that_clears(kit: Kit) -> None:
    seed_three(kit)
    kit.backend.linger(2)
    kit.remove("2025-Q3.md")
    r = kit.push()
    assert r.code == 0
    assert "dependency lingers" in r.stderr
    assert "force-deleted" not in r.stderr


def test_doc_used_by_another_agent_is_never_forced(kit: Kit) -> None:
    seed_three(kit)
    shared = kit.managed_kb()[2]
    other = kit.backend.seed_agent(name="Other agent")
    kit.backend.attach(other, shared["id"])
    kit.remove("2025-Q3.md")
    r = kit.push()
    assert r.code == ExitCode.PARTIAL
    assert shared["id"] in kit.backend.docs
    assert [e["id"] for e in kit.backend.agent_kb(other)] == [shared["id"]]
    assert all(not (c.method == "DELETE" and c.query.get("force")) for c in kit.backend.calls)
    assert "kept" in r.stderr


def test_unmanaged_entries_are_never_touched(kit: Kit) -> None:
    a = kit.backend.seed_document("Prices", para("prices"), attach_to=[kit.agent_id])
    seed_three(kit)
    b = kit.backend.seed_document("Contacts", para("contacts"), attach_to=[kit.agent_id])
    kit.write("2025-Q1.md", "# edited\n\n" + para("e"))
    kit.remove("2025-Q3.md")
    assert kit.push().code == 0
    kb = kit.backend.agent_kb(kit.agent_id)
    assert kb[0]["id"] == a and kb[-1]["id"] == b
    assert {a, b} <= set(kit.backend.docs)
    touched = {c.path.split("/")[4] for c in kit.writes() if c.path.count("/") >= 4}
    assert a not in touched and b not in touched


def test_adopt_legacy_replaces_old_script_uploads_and_duplicates(kit: Kit) -> None:
    kit.write("2025-Q1.md", para("q1"))
    kit.write("2025-Q2.md", para("q2"))
    l1 = kit.backend.seed_document("2025-Q1.md", para("old q1"), attach_to=[kit.agent_id])
    l1b = kit.backend.seed_document("2025-Q1", para("old q1"), attach_to=[kit.agent_id])
    other = kit.backend.seed_document("Unrelated", para("u"), attach_to=[kit.agent_id])
    r = kit.push("--dry-run")
    assert "--adopt-legacy" in r.stdout  # the plan points at the old uploads
    r = kit.push("--adopt-legacy", "--dry-run")
    assert "adopt (1)" in r.stdout
    assert kit.push("--adopt-legacy").code == 0
    kb = kit.backend.agent_kb(kit.agent_id)
    shown = [kit.file_of(e) if e["name"].startswith("kb-sync:") else e["name"] for e in kb]
    assert shown == ["2025-Q1.md", "Unrelated", "2025-Q2.md"]  # one entry each, legacy's place
    assert other in [e["id"] for e in kb]
    assert l1 not in kit.backend.docs and l1b not in kit.backend.docs
    assert sorted(kit.file_of(e) for e in kit.managed_kb()) == ["2025-Q1.md", "2025-Q2.md"]
    assert kb[0]["name"].startswith("kb-sync:2025-Q1.md")  # in the legacy entry's place


def test_duplicates_of_a_managed_file_are_removed(kit: Kit) -> None:
    seed_three(kit)
    e = kit.managed_kb()[0]
    dup = kit.backend.seed_document(e["name"], kit.backend.docs[e["id"]].text)
    kit.backend.attach(kit.agent_id, dup)
    r = kit.push()
    assert r.code == 0
    assert [kit.file_of(x) for x in kit.managed_kb()].count("2025-Q1.md") == 1
    assert len(kit.managed_docs()) == 3


def test_embedding_model_mismatch_is_refused(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    env = dict(kit.env, RAG_EMBEDDING_MODEL="e5_mistral_7b_instruct")
    r = kit.kb("push", "--dir", str(kit.dir), env=env)
    assert r.code == ExitCode.BAD_INPUT
    assert kit.writes() == []


def test_rag_disabled_agent_is_refused(kit: Kit) -> None:
    agent = kit.backend.seed_agent(rag_enabled=False)
    kit.write("a.md", para("a"))
    r = kit.kb("push", "--dir", str(kit.dir), env=dict(kit.env, ELEVENLABS_AGENT_ID=agent))
    assert r.code == ExitCode.BAD_INPUT
    assert kit.writes() == []


@pytest.mark.parametrize("retry_after", [None, "2"])
def test_429_is_retried_with_and_without_retry_after(kit: Kit, retry_after: str | None) -> None:
    kit.write("a.md", para("a"))
    kit.backend.add_fault(rate_limited(retry_after=None if retry_after is None else 2.0))
    kit.backend.faults[-1].times = 3
    r = kit.push()
    assert r.code == 0
    assert len(kit.managed_kb()) == 1
    assert sum(1 for c in kit.backend.calls if c.status == 429) == 3


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_on_reads_is_retried(kit: Kit, status: int) -> None:
    kit.write("a.md", para("a"))
    kit.backend.add_fault(FaultRule(method="GET", path=r"/agents/", times=2, status=status))
    assert kit.push().code == 0


def test_4xx_is_not_retried(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    kit.backend.add_fault(
        FaultRule(
            method="GET",
            path=r"/agents/",
            times=1,
            status=403,
            body={"detail": {"status": "forbidden", "message": "no"}},
        )
    )
    r = kit.push()
    assert r.code != 0
    assert sum(1 for c in kit.backend.calls if "/agents/" in c.path) == 1


@pytest.mark.parametrize(
    "fault",
    [
        FaultRule(method="POST", path=r"/knowledge-base/text$", times=1, drop_after_commit=True),
        server_error(500, method="POST", path=r"/knowledge-base/text$", times=1),
    ],
    ids=["dropped-after-commit", "500-not-committed"],
)
def test_create_is_never_blindly_retried(kit: Kit, fault: FaultRule) -> None:
    kit.backend.add_fault(fault)
    kit.write("a.md", para("a"))
    r = kit.push()
    assert r.code == 0, r.stderr
    assert len(kit.managed_docs()) == 1  # one document, not two
    assert len(kit.managed_kb()) == 1


def test_patch_retries_rag_index_not_ready(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    kit.backend.add_fault(
        FaultRule(
            method="PATCH",
            path=r"/agents/",
            times=2,
            status=422,
            body={
                "detail": {
                    "status": "rag_index_not_ready",
                    "code": "rag_index_not_ready",
                    "message": "not ready",
                }
            },
        )
    )
    r = kit.push()
    assert r.code == 0
    assert "agent.patch_retry" in r.stderr


def test_stale_plan_is_not_overwritten(kit: Kit) -> None:
    seed_three(kit)
    kit.write("2025-Q1.md", "# new\n\n" + para("n"))
    someone = kit.managed_kb()[1]

    def person_edits(backend, call):  # type: ignore[no-untyped-def]
        if call.method == "POST" and call.path.endswith("/rag-index") and not hook.done:
            hook.done = True
            kb = [e for e in backend.agent_kb(kit.agent_id) if e["id"] != someone["id"]]
            backend.agents[kit.agent_id].body["conversation_config"]["agent"]["prompt"][
                "knowledge_base"
            ] = kb

    class hook:
        done = False

    kit.backend.after_request.append(person_edits)
    r = kit.push()
    assert r.code == ExitCode.REFUSED
    assert "changed since the plan" in r.stderr + r.stdout
    assert not any(c.method == "PATCH" for c in kit.backend.calls)


def test_converges_after_a_crash_and_reuses_the_orphan(kit: Kit) -> None:
    seed_three(kit)
    kit.write("2025-Q2.md", "# new\n\n" + para("crash"))

    class Crash(BaseException):  # like a killed cron: nothing in the tool catches it
        pass

    def crash(backend, call):  # type: ignore[no-untyped-def]
        if call.method == "POST" and call.path.endswith("/rag-index"):
            raise Crash()

    kit.backend.after_request.append(crash)
    with pytest.raises(Crash):
        kit.push()
    kit.backend.after_request.clear()
    assert [kit.file_of(e) for e in kit.managed_kb()] == ["2025-Q1.md", "2025-Q2.md", "2025-Q3.md"]
    kit.backend.clear_calls()
    r = kit.push()
    assert r.code == 0, r.stderr
    creates = [c for c in kit.backend.calls if is_upload(c)]
    assert creates == []  # the orphan upload was reused
    assert len(kit.managed_docs()) == 3  # and no orphan left behind


def test_nothing_to_do_costs_agent_plus_list_pages(kit: Kit) -> None:
    # this is about paging the listing: a plan that keeps every entry of a large PATCH
    # (the 100-entry report is tested in test_a_large_patch_that_is_not_all_kept_is_partial)
    kit.backend.set_plan(max_patch_entries=None)
    for i in range(150):
        kit.write(f"d{i:03}.md", para(f"d{i}", 3))
    assert kit.push("--concurrency", "8").code == 0
    kit.backend.clear_calls()
    assert kit.push().code == 0
    assert len(kit.backend.calls) == 1 + math.ceil(150 / 100)


def test_run_record_and_before_line(kit: Kit) -> None:
    seed_three(kit)
    kit.write("2025-Q1.md", "# new\n\n" + para("r"))
    r = kit.push()
    files = sorted(kit.records.glob("*-push-*.json"))
    rec = json.loads(files[-1].read_text())
    assert rec["patched"] and rec["status"] == "done"
    assert [e["name"] for e in rec["kb_before"]][0].startswith("kb-sync:2025-Q1.md")
    assert rec["deletions"][0]["outcome"] == "deleted"
    old_id = rec["deletions"][0]["id"]
    assert old_id in rec["saved"] and "2025-Q1" in rec["saved"][old_id]["text"]
    assert "kb.before" in r.stderr and "count=3" in r.stderr


def test_log_lines_prove_each_step(kit: Kit) -> None:
    seed_three(kit)
    kit.write("2025-Q2.md", "# new\n\n" + para("log"))
    r = kit.push()
    for needle in (
        "kb.before",
        "count=3",
        "plan summary=",
        "doc.uploaded file=2025-Q2.md",
        "index.result file=2025-Q2.md",
        "status=succeeded",
        "agent.patched",
        "count_before=3 count_after=3",
        "delete.attempt",
        "outcome=deleted",
        "run.done",
        'updated=["2025-Q2.md"]',
    ):
        assert needle in r.stderr, needle
