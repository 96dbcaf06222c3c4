"""The delete phase: superseded documents are deleted side by side (``--concurrency``), and
the waiting for a lingering dependency ends at the run's deadline (a document still in use
then is kept, never forced), on the FakeClock the CLI shares with the emulator."""

from __future__ import annotations

from typing import Any

from sync.errors import ExitCode

from .conftest import Kit, para

BUDGET = 600.0  # the run's deadline from its start: max(600, 2 x 30 + 300) for --index-wait 30


def seed(kit: Kit, n: int) -> list[str]:
    """``n`` files pushed; then each edited (a push supersedes every one): the old ids."""
    for i in range(n):
        kit.write(f"f{i:02}.md", para(f"v1 {i}"))
    assert kit.push().code == 0
    old = [e["id"] for e in kit.managed_kb()]
    for i in range(n):
        kit.write(f"f{i:02}.md", para(f"v2 {i}"))
    kit.backend.clear_calls()
    return old


def deletes_of(kit: Kit, ids: list[str]) -> list[Any]:
    """The DELETEs sent for the documents ``ids``, in the order the server saw them."""
    wanted = set(ids)
    return [
        c for c in kit.backend.calls if c.method == "DELETE" and c.path.rsplit("/", 1)[-1] in wanted
    ]


def test_superseded_docs_are_deleted_side_by_side_not_one_after_another(kit: Kit) -> None:
    """The review's case: dependents that linger for 2 attempts, 8 files changed. The back-off
    is waited once for all of them (about 1 + 2 s of the clock), not once per document."""
    old = seed(kit, 8)
    kit.backend.linger(2)
    r = kit.push("--concurrency", "4")
    assert r.code == 0, r.stderr
    assert not set(old) & set(kit.backend.docs)
    sent = deletes_of(kit, old)
    assert not any(c.query.get("force") for c in sent)  # it cleared: nothing forced
    assert len(sent) == 3 * len(old)  # two lingering attempts each, then deleted
    phase = sent[-1].at - sent[0].at
    assert phase <= 1 + 2 + 1, phase  # one back-off for all (serially: 8 x 3 s)
    # interleaved: another document's DELETE comes between the first document's two attempts
    first = [i for i, c in enumerate(sent) if c.path == sent[0].path]
    assert any(c.path != sent[0].path for c in sent[first[0] : first[1]])


def test_deletions_keep_the_plan_order_and_their_fields(kit: Kit) -> None:
    old = seed(kit, 5)
    kit.backend.linger(2)
    r = kit.push("--json")
    assert r.code == 0, r.stderr
    deletions = r.json()["result"]["deletions"]
    assert [d["id"] for d in deletions] == old  # the plan's order, whatever finished first
    for d in deletions:
        assert set(d) == {"id", "name", "reason", "attempts", "forced", "outcome"}
        assert (d["outcome"], d["attempts"], d["forced"]) == ("deleted", 3, False)


def test_many_lingering_docs_are_forced_after_one_back_off_not_n(kit: Kit) -> None:
    """Dependents that never clear by themselves: every doc is re-read (nobody else, not our
    agent) and then forced, after 1 + 2 + 4 + 8 s of the clock in all."""
    old = seed(kit, 30)
    kit.backend.linger(100)
    r = kit.push("--json", "--index-wait", "30")
    assert r.code == 0, r.stderr
    sent = deletes_of(kit, old)
    assert sent[-1].at - sent[0].at <= 15 + 5  # serially: 30 x 15 s, past the deadline
    outcomes = {d["outcome"] for d in r.json()["result"]["deletions"]}
    assert outcomes == {"force-deleted"}
    assert not set(old) & set(kit.backend.docs)
    calls = kit.backend.calls
    for doc in old:  # re-read right before its force: its dependents (nobody else)
        mine = [i for i, c in enumerate(calls) if c.method == "DELETE" and doc in c.path]
        last_plain, forced = mine[-2], mine[-1]
        assert calls[forced].query.get("force") and not calls[last_plain].query.get("force")
        between = [c.path for c in calls[last_plain:forced]]
        assert f"/v1/convai/knowledge-base/{doc}/dependent-agents" in between
    # ... and the agent (not our agent either): read once for each doc in the force round
    first_force = next(i for i, c in enumerate(calls) if c.query.get("force"))
    last_plain = max(i for i, c in enumerate(calls[:first_force]) if c.method == "DELETE")
    reads = [c for c in calls[last_plain:] if c.path == f"/v1/convai/agents/{kit.agent_id}"]
    assert len(reads) >= len(old)


def test_lingering_docs_are_kept_when_the_runs_deadline_is_near(kit: Kit) -> None:
    """The run reaches its deletes 10 s before its deadline (a slow server): the back-off that
    would end past it is not waited; each doc still in use is kept (exit 3), not forced, and
    the run ends within its deadline. The next run deletes them."""
    old = seed(kit, 30)
    kit.backend.linger(100)
    start = kit.clock.now()

    def slow_until_patch(backend, call):  # type: ignore[no-untyped-def]
        if call.method == "PATCH" and "/agents/" in call.path and call.status == 200:
            kit.clock.advance(start + BUDGET - 10 - kit.clock.now())

    kit.backend.after_request.append(slow_until_patch)
    r = kit.push("--json", "--index-wait", "30")
    kit.backend.after_request.clear()
    assert r.code == ExitCode.PARTIAL, r.stderr
    assert kit.clock.now() <= start + BUDGET  # it ended within its deadline
    deletions = r.json()["result"]["deletions"]
    assert [d["id"] for d in deletions] == old
    assert {d["outcome"] for d in deletions} == {"kept"}
    assert all("deadline" in d["kept_because"] and not d["forced"] for d in deletions)
    assert set(old) <= set(kit.backend.docs)
    assert not any(c.query.get("force") for c in kit.backend.calls)
    assert "outcome=kept" in r.stderr and "deadline" in r.stderr
    # the agent is on the new versions; the next run (dependents settled) removes the old ones
    kit.backend.linger(0)
    assert kit.push().code == 0
    assert not set(old) & set(kit.backend.docs)


def test_a_doc_another_agent_uses_is_kept_while_the_others_are_forced(kit: Kit) -> None:
    old = seed(kit, 6)
    shared = old[3]
    other = kit.backend.seed_agent(name="Other agent")
    kit.backend.attach(other, shared)
    kit.backend.linger(100)
    r = kit.push("--json")
    assert r.code == ExitCode.PARTIAL, r.stderr
    by_id = {d["id"]: d for d in r.json()["result"]["deletions"]}
    assert by_id[shared]["outcome"] == "kept" and "used by" in by_id[shared]["kept_because"]
    assert {by_id[d]["outcome"] for d in old if d != shared} == {"force-deleted"}
    assert [e["id"] for e in kit.backend.agent_kb(other)] == [shared]
    assert not any(c.query.get("force") and shared in c.path for c in kit.backend.calls)
