"""The default namespace is one per agent; the old shared default is adopted, not duplicated."""

from __future__ import annotations

from sync.config import default_namespace
from sync.naming import fingerprint, managed_name
from sync.testing import is_upload

from .conftest import Kit, para


def default_env(kit: Kit, agent: str) -> dict[str, str]:
    env = {k: v for k, v in kit.env.items() if k != "KB_SYNC_NAMESPACE"}
    return {**env, "ELEVENLABS_AGENT_ID": agent}


def test_two_agents_of_one_workspace_never_share_documents(kit: Kit) -> None:
    staging = kit.backend.seed_agent(name="Staging")
    kit.write("a.md", para("a"))
    prod = kit.kb("push", "--dir", str(kit.dir), env=default_env(kit, kit.agent_id))
    assert prod.code == 0, prod.stderr
    stage = kit.kb("push", "--dir", str(kit.dir), env=default_env(kit, staging))
    assert stage.code == 0, stage.stderr
    [p] = kit.backend.agent_kb(kit.agent_id)
    [s] = kit.backend.agent_kb(staging)
    assert p["id"] != s["id"]
    assert p["name"].startswith(default_namespace(kit.agent_id) + ":")
    assert s["name"].startswith(default_namespace(staging) + ":")
    # a change on staging is staging's alone: production's document stays, exit 0 not 3
    kit.write("a.md", para("a2"))
    again = kit.kb("push", "--dir", str(kit.dir), env=default_env(kit, staging))
    assert again.code == 0, again.stderr
    assert [e["id"] for e in kit.backend.agent_kb(kit.agent_id)] == [p["id"]]


def test_the_old_shared_default_is_adopted_on_the_first_run(kit: Kit) -> None:
    text_a, text_b = para("a"), para("b")
    kit.write("a.md", text_a)
    kit.write("b.md", text_b)
    old = {
        f: kit.backend.seed_document(
            managed_name("kb-sync", f, fingerprint(t)), t, attach_to=[kit.agent_id]
        )
        for f, t in (("a.md", text_a), ("b.md", text_b))
    }
    kit.write("b.md", para("b2"))  # one file changed since the last run of the old version
    r = kit.kb("push", "--dir", str(kit.dir), env=default_env(kit, kit.agent_id))
    assert r.code == 0, r.stderr
    kb = kit.backend.agent_kb(kit.agent_id)
    assert [e["id"] for e in kb][0] == old["a.md"]  # unchanged: adopted, not uploaded again
    assert kb[1]["name"].startswith(default_namespace(kit.agent_id) + ":b.md#")
    assert old["b.md"] not in kit.backend.docs  # superseded, ours, deleted
    uploads = [c for c in kit.backend.calls if is_upload(c)]
    assert len(uploads) == 1  # no duplicate of a.md
