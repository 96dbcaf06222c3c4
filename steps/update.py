"""5.2: new versions created, indexed, attached through one PATCH, old versions deleted."""

from __future__ import annotations

from typing import Any

from pytest_bdd import given, parsers, then

from steps.common import FILES, file_list
from steps.world import World

KB_PATH = "conversation_config.agent.prompt.knowledge_base"


def _kb_in_patch(body: Any) -> list[dict[str, Any]] | None:
    try:
        kb = body["conversation_config"]["agent"]["prompt"]["knowledge_base"]
    except (KeyError, TypeError):
        return None
    return kb if isinstance(kb, list) else None


def _entry_for(world: World, file: str) -> dict[str, Any] | None:
    entries = world.managed_entries().get(file, [])
    return entries[0] if len(entries) == 1 else None


@then(parsers.re(r"a new document was created for each of " + FILES + "$"))
def created_for_each(world: World, files: str) -> None:
    posts = [
        c
        for c in world.last.calls
        if c["method"] == "POST" and c["path"].endswith("/knowledge-base/text")
    ]
    for f in file_list(files):
        name = world.name_for(f)
        hit = [c for c in posts if (c.get("request_json") or {}).get("name") == name]
        world.evidence.check(
            f"{f}: new document created",
            len(hit) == 1,
            f"POST /v1/convai/knowledge-base/text name={name}"
            if len(hit) == 1
            else f"{len(hit)} creates named {name}",
        )


@then(parsers.re(r"the new version of each of " + FILES + r' is indexed "(?P<status>[^"]+)"$'))
def new_version_indexed(world: World, files: str, status: str) -> None:
    for f in file_list(files):
        e = _entry_for(world, f)
        got = world.target.index_status(str(e["id"])) if e else None
        world.evidence.check(
            f"{f}: new version indexed {status}",
            e is not None and e["name"] == world.name_for(f) and got == status,
            f"{e['name'] if e else 'no entry'} [{e['id'] if e else '-'}]: {got}",
            dod="Every managed document indexed succeeded" if status == "succeeded" else None,
        )


@then(
    "the agent was PATCHed once through conversation_config.agent.prompt.knowledge_base "
    "with the new versions in place of the old"
)
def patched_once(world: World) -> None:
    res = world.last
    patches = [
        c
        for c in res.calls
        if c["method"] == "PATCH" and c["path"].rstrip("/").endswith(f"/agents/{world.agent_id}")
    ]
    world.evidence.check("exactly one agent PATCH", len(patches) == 1, f"{len(patches)} PATCHes")
    body = patches[0].get("request_json")
    sent = _kb_in_patch(body)
    world.evidence.check(
        f"PATCH body carries the whole list at {KB_PATH}",
        sent is not None and isinstance(body, dict) and set(body) == {"conversation_config"},
        f"top-level keys {sorted(body) if isinstance(body, dict) else body}",
    )
    assert sent is not None
    before = world.kb_before_push or []
    old_to_file = {v: k for k, v in world.synced.items()}
    expected = []
    for e in before:
        f = old_to_file.get(str(e["id"]))
        expected.append(world.name_for(f) if f and f in world.files else e["name"])
    expected += [world.name_for(f) for f in sorted(world.files) if f not in world.synced]
    world.evidence.check(
        "new versions in place of the old, same order, unmanaged entries in place",
        [e["name"] for e in sent] == expected,
        f"sent {[e['name'] for e in sent]}",
    )
    world.evidence.check(
        "the agent reads back what was sent",
        [e["id"] for e in world.kb()] == [e["id"] for e in sent],
        f"{len(sent)} entries",
    )


@given(parsers.re(r"the old versions of " + FILES + " are deleted$"))
@then(parsers.re(r"the old versions of " + FILES + " are deleted$"))
def old_versions_deleted(world: World, files: str) -> None:
    for f in file_list(files):
        old = world.synced[f]
        attempts = [
            d for r in world.runs for d in r.event("delete.attempt") if str(d.get("id")) == old
        ]
        gone = world.target.doc(old) is None
        world.evidence.check(
            f"{f}: old version deleted",
            gone and bool(attempts),
            f"[{old}] "
            + (
                f"{attempts[-1].get('outcome')} at attempt {attempts[-1].get('attempt')}"
                if attempts
                else "no delete.attempt logged"
            )
            + ("" if gone else "; still exists"),
            dod="Old versions deleted or the reason logged",
        )
