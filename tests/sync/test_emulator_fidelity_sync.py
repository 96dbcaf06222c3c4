"""The sync against the emulator's evidence-based behaviours: a superseded doc still used on
a branch of our own agent is kept (dependents' real branch entries), and a 429
``system_busy`` (no Retry-After, no ``code``) is retried."""

from __future__ import annotations

from sync.emulator import system_busy
from sync.testing import is_upload

from .conftest import Kit, para


def test_a_superseded_doc_used_on_a_branch_of_our_agent_is_kept(kit: Kit) -> None:
    kit.write("2025-Q1.md", "# 2025-Q1\n\n" + para("v1"))
    assert kit.push().code == 0
    old = str(kit.managed_kb()[0]["id"])
    branch = kit.backend.seed_branch(kit.agent_id, "staging")  # main's KB, old doc included
    kit.write("2025-Q1.md", "# 2025-Q1\n\n" + para("v2"))
    r = kit.push()
    assert r.code == 3, r.stderr  # partial: the old version is kept, not force-deleted
    assert old in kit.backend.docs
    assert old in {e["id"] for e in kit.backend.agent_kb(kit.agent_id, branch)}
    assert old not in {e["id"] for e in kit.backend.agent_kb(kit.agent_id)}


def test_system_busy_is_retried(kit: Kit) -> None:
    kit.backend.add_fault(system_busy(method="POST", path="/knowledge-base/text$"))
    kit.write("2025-Q1.md", "# 2025-Q1\n\n" + para("busy"))
    r = kit.push()
    assert r.code == 0, r.stderr
    assert [c.status for c in kit.backend.calls if is_upload(c)] == [429, 200]
