"""The plan's JSON keeps its shape without ``dataclasses.asdict`` (which deep-copies)."""

from __future__ import annotations

import dataclasses

from sync.domain import Layout
from sync.plan import Item, Plan, Ref


def sample() -> Plan:
    items = [
        Item("create", "a.md", "kb-sync:a.md#0", 900),
        Item("update", "b.md", "kb-sync:b.md#1", 800, "prompt", "r1", [Ref("o1", "old", "x")], "c"),
        Item("delete", None, "kb-sync:c.md#2", replaces=[Ref("o2", "gone")]),
        Item("unchanged", "d.md", "kb-sync:d.md#3"),
        Item("skip", "e.md", reason="small"),
        Item("adopt", "f.md", "kb-sync:f.md#4", replaces=[Ref("l1", "f.md", "legacy")]),
    ]
    return Plan(
        items,
        orphans=[Ref("p1", "kb-sync:z.md#9", "orphan")],
        legacy=[Ref("l2", "g.md")],
        managed_ids=["o1", "o2"],
        folder=Layout("kb-sync", None),
        moves=[Ref("m1", "kb-sync:d.md#3")],
    )


def test_to_dict_is_the_asdict_shape() -> None:
    plan = sample()
    d = plan.to_dict()
    assert d["items"] == [dataclasses.asdict(i) for i in plan.items]
    assert d["orphans"] == [dataclasses.asdict(o) for o in plan.orphans]
    assert d["legacy"] == [dataclasses.asdict(o) for o in plan.legacy]
    assert d["moves"] == [dataclasses.asdict(m) for m in plan.moves]
    assert d["summary"] == {
        "add": 1,
        "change": 2,
        "destroy": 2,
        "unchanged": 1,
        "skip": 1,
        "text": "1 to add, 2 to change, 2 to destroy, 1 to move",
    }


def test_to_dict_shares_nothing_mutable_with_the_plan() -> None:
    plan = sample()
    d = plan.to_dict()
    d["items"][1]["replaces"].clear()
    assert plan.items[1].replaces == [Ref("o1", "old", "x")]


def test_render_groups_in_the_fixed_order_keeping_the_items_order() -> None:
    plan = sample()
    plan.items.append(Item("create", "a2.md", "kb-sync:a2.md#5"))
    heads = [ln for ln in plan.render().splitlines() if ln.endswith("):") and "(" in ln]
    assert heads[:6] == [
        "create (2):",
        "update (1):",
        "adopt (1):",
        "delete (1):",
        "skip (1):",
        "unchanged (1):",
    ]
    text = plan.render()
    assert text.index("+ a.md") < text.index("+ a2.md")
