"""9: rollback brings the previous knowledge base back, even after deletion."""

from __future__ import annotations

from pytest_bdd import parsers, then

from steps.world import World


@then("the agent's knowledge base equals the one before the push, by names and content")
def kb_equals_before(world: World) -> None:
    before = world.kb_before_push or []
    now = world.kb()
    world.evidence.check(
        "same entries by name, order and usage mode",
        [(e["name"], e.get("usage_mode")) for e in now]
        == [(e["name"], e.get("usage_mode")) for e in before],
        f"before {[e['name'] for e in before]}; now {[e['name'] for e in now]}",
    )
    wrong = []
    for e in now:
        doc = world.target.doc(str(e["id"]))
        if doc is None or doc["text"] != world.texts_before_push.get(str(e["name"])):
            wrong.append(str(e["name"]))
    world.evidence.check(
        "same content for every entry", not wrong, ", ".join(wrong) or f"{len(now)} entries"
    )
    world.evidence.fact("count after rollback", len(now))


@then(parsers.re(r'every recreated document is indexed "(?P<status>[^"]+)"$'))
def recreated_indexed(world: World, status: str) -> None:
    recreated = world.last.event("rollback.recreated")
    world.evidence.check("rollback recreated the deleted version", bool(recreated), "")
    for r in recreated:
        got = world.target.index_status(str(r.get("id")))
        world.evidence.check(
            f"{r.get('name')}: recreated [{r.get('id')}] indexed {status}",
            got == status,
            f"was {r.get('old_id')}; index {got}",
            dod="Every managed document indexed succeeded",
        )


@then("the documents the push created are deleted")
def created_deleted(world: World) -> None:
    push = next(r for r in world.runs if r.argv[:1] == ["push"])
    ids = [str(e.get("id")) for e in push.event("doc.uploaded")]
    left = [i for i in ids if world.target.doc(i) is not None]
    world.evidence.check(
        "what the push created is deleted", bool(ids) and not left, f"created {ids}; left {left}"
    )
