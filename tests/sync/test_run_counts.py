"""A run's own request count (``run.done requests=``, the record's ``requests``) is the count
the server saw, every request of the run included: the logs prove each step, so they must
not be one short (the lease is released after the last write)."""

from __future__ import annotations

import json
import re

from sync.config import default_namespace
from sync.emulator.faults import server_error
from sync.testing import Result
from tests.sync.conftest import Kit, para


def logged_requests(r: Result) -> int:
    found = re.findall(r"run\.done .*?requests=(\d+)", r.stderr)
    assert len(found) == 1, r.stderr
    return int(found[0])


def newest_record(kit: Kit) -> dict[str, object]:
    files = sorted(kit.records.glob("*-push-*.json"), key=lambda p: p.stat().st_mtime_ns)
    return dict(json.loads(files[-1].read_text()))


def test_a_changing_push_counts_every_request_it_sent(kit: Kit) -> None:
    for q in ("2025-Q1", "2025-Q2"):
        kit.write(f"{q}.md", f"# {q}\n\n" + para(q))
    kit.backend.clear_calls()
    first = kit.push()
    assert first.code == 0
    sent = len(kit.backend.calls)
    assert any(c.method == "DELETE" for c in kit.backend.calls)  # the lease's release
    assert logged_requests(first) == sent
    assert newest_record(kit)["requests"] == sent

    kit.write("2025-Q2.md", "# 2025-Q2 v2\n\n" + para("v2"))
    kit.backend.clear_calls()
    update = kit.push()
    assert update.code == 0
    assert logged_requests(update) == len(kit.backend.calls)
    assert newest_record(kit)["requests"] == len(kit.backend.calls)


def test_a_push_with_nothing_to_do_counts_every_request_it_sent(kit: Kit) -> None:
    kit.write("2025-Q1.md", "# 2025-Q1\n\n" + para("q1"))
    assert kit.push().code == 0
    kit.backend.clear_calls()
    again = kit.push()
    assert again.code == 0 and "Nothing to do" in again.stdout
    assert logged_requests(again) == len(kit.backend.calls)


def test_a_failed_push_records_every_request_it_sent(kit: Kit) -> None:
    kit.write("2025-Q1.md", "# 2025-Q1\n\n" + para("q1"))
    kit.backend.clear_calls()
    # the agent PATCH fails (after its retries): nothing changed, the run failed
    kit.backend.add_fault(server_error(500, method="PATCH", path="/agents/", times=None))
    failed = kit.push()
    assert failed.code != 0
    record = newest_record(kit)
    assert record["status"] == "failed"
    assert record["requests"] == len(kit.backend.calls)


def test_a_rollback_records_and_logs_every_request_it_sent(kit: Kit) -> None:
    kit.write("2025-Q1.md", "# 2025-Q1\n\n" + para("v1"))
    assert kit.push().code == 0
    kit.write("2025-Q1.md", "# 2025-Q1 v2\n\n" + para("v2"))
    assert kit.push().code == 0
    kit.backend.clear_calls()
    r = kit.kb("rollback")
    assert r.code == 0, r.stderr
    sent = len(kit.backend.calls)
    found = re.findall(r"rollback\.done .*?requests=(\d+)", r.stderr)
    assert [int(n) for n in found] == [sent]
    files = sorted(kit.records.glob("*-rollback-*.json"), key=lambda p: p.stat().st_mtime_ns)
    assert json.loads(files[-1].read_text())["requests"] == sent


def test_a_first_push_costs_what_the_readme_formula_says(kit: Kit) -> None:
    """README: the update formula, plus 2 folder creates and 2 listings, minus the .kb-sync
    lookup: 17 + k + the batch index requests (computes and polls)."""
    for i in range(5):
        kit.write(f"q{i}.md", f"# q{i}\n\n" + para(f"q{i}"))
    kit.backend.clear_calls()
    r = kit.push()
    assert r.code == 0, r.stderr
    batches = [
        c
        for c in kit.backend.calls
        if c.method == "POST" and c.path.endswith("/knowledge-base/rag-index")
    ]
    assert batches and len(kit.backend.calls) == 17 + 5 + len(batches)


def test_with_the_default_namespace_a_run_lists_only_its_own_agents_documents(kit: Kit) -> None:
    """Unset KB_SYNC_NAMESPACE gives each agent its own `kb-sync-<hash>` namespace; the old
    shared `kb-sync` prefix is listed only while the agent still uses such documents, so
    other agents' documents in the workspace cost no list pages."""
    env = {k: v for k, v in kit.env.items() if k != "KB_SYNC_NAMESPACE"}
    for i in range(120):  # another agent's documents, in its own namespace
        kit.backend.seed_document(f"kb-sync-0123456789ab:q{i}.md#{i:016x}", para(f"o{i}"))
    kit.write("a.md", para("a"))
    assert kit.kb("push", "--dir", str(kit.dir), env=env).code == 0
    kit.backend.clear_calls()
    again = kit.kb("push", "--dir", str(kit.dir), env=env)
    assert again.code == 0 and "Nothing to do" in again.stdout
    lists = [c for c in kit.backend.calls if c.path == "/v1/convai/knowledge-base"]
    assert len(kit.backend.calls) == 2 and len(lists) == 1
    assert lists[0].query.get("search") == [default_namespace(kit.agent_id)]
