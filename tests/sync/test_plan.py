"""The pure planner: local manifest + remote snapshot -> plan. No HTTP here."""

from __future__ import annotations

from typing import Any

from sync.content import same_content
from sync.domain import AgentView, Layout, RemoteDoc, entries_from
from sync.local import LocalDoc, normalise
from sync.naming import fingerprint, managed_name, parse
from sync.plan import Snapshot
from sync.planner import content_reads, make_plan

NS = "kb-sync"
FOLDER = "F0lder"


def local(file: str, text: str) -> LocalDoc:
    text = normalise(text)
    return LocalDoc(file, text, fingerprint(text), len(text.encode()))


def remote(ld: LocalDoc, doc_id: str, *, size: int | None = None) -> dict[str, Any]:
    return {
        "id": doc_id,
        "name": managed_name(NS, ld.file, ld.fingerprint),
        "metadata": {"size_bytes": ld.size_bytes if size is None else size},
        "folder_parent_id": FOLDER,  # in our folder already (moves are tested apart)
    }


def entry(doc: dict[str, Any], mode: str = "auto") -> dict[str, Any]:
    return {"type": "text", "name": doc["name"], "id": doc["id"], "usage_mode": mode}


def snap(kb: list[dict[str, Any]], docs: list[dict[str, Any]]) -> Snapshot:
    agent = AgentView("agent_x", "A", entries_from(kb), True, "multilingual_e5_large_instruct")
    docs_by_id = {str(d["id"]): RemoteDoc.from_json(d) for d in docs}
    return Snapshot(agent, docs_by_id, layout=Layout(NS, FOLDER))


BIG = "x" * 600


def test_names_round_trip_and_foreign_names_are_unmanaged() -> None:
    n = managed_name(NS, "2025 Q1 отчёт.md", "0123456789abcdef")
    assert parse(n, NS) is not None and parse(n, NS).file == "2025 Q1 отчёт.md"  # type: ignore[union-attr]
    for foreign in (
        "2025-Q1.md",
        "kb-sync:2025.md",
        "kb-sync:a.md#XYZ",
        "other:a.md#0123456789abcdef",
    ):
        assert parse(foreign, NS) is None
    assert parse(n, "kb-sync-staging") is None


def test_empty_remote_plans_creates_in_file_order() -> None:
    docs = [local("b.md", BIG + "b"), local("a.md", BIG + "a")]
    plan = make_plan(sorted(docs, key=lambda d: d.file), snap([], []), namespace=NS)
    assert [(i.action, i.file) for i in plan.items] == [("create", "a.md"), ("create", "b.md")]
    assert plan.summary() == "2 to add, 0 to change, 0 to destroy"


def test_unchanged_when_fingerprint_and_size_match() -> None:
    a = local("a.md", BIG)
    d = remote(a, "d1")
    plan = make_plan([a], snap([entry(d)], [d]), namespace=NS)
    assert plan.items[0].action == "unchanged"
    assert not plan.has_changes


def test_size_mismatch_with_same_fingerprint_is_a_change() -> None:
    a = local("a.md", BIG)
    d = remote(a, "d1", size=a.size_bytes + 1)
    plan = make_plan([a], snap([entry(d)], [d]), namespace=NS)
    assert plan.items[0].action == "update"


def test_strict_reads_content_only_for_trusted_candidates() -> None:
    a = local("a.md", BIG)
    b = local("b.md", BIG + "b")
    da, db = remote(a, "d1"), remote(b, "d2", size=1)
    s = snap([entry(da), entry(db)], [da, db])
    assert content_reads([a, b], s, NS, strict=True) == ["d1"]
    assert content_reads([a, b], s, NS, strict=False) == []
    s.contents["d1"] = BIG.replace("x", "y", 1)  # edited in the UI, same size
    plan = make_plan([a, b], s, namespace=NS, strict=True)
    assert plan.items[0].action == "update"
    s.contents["d1"] = BIG
    assert make_plan([a], s, namespace=NS, strict=True).items[0].action == "unchanged"


def test_removed_file_is_deleted_and_unmanaged_entries_ignored() -> None:
    a = local("a.md", BIG)
    gone = local("gone.md", BIG + "g")
    da, dg = remote(a, "d1"), remote(gone, "d2")
    manual = {"type": "text", "name": "FAQ", "id": "m1", "usage_mode": "auto"}
    plan = make_plan([a], snap([manual, entry(da), entry(dg)], [da, dg]), namespace=NS)
    assert [(i.action, i.file) for i in plan.items] == [
        ("unchanged", "a.md"),
        ("delete", "gone.md"),
    ]
    assert plan.managed_ids == ["d1", "d2"]
    assert all("m1" not in [r.id for r in i.replaces] for i in plan.items)


def test_orphan_with_the_right_content_is_reused_others_cleaned() -> None:
    a = local("a.md", BIG)
    orphan = remote(a, "o1")
    stale = remote(local("a.md", BIG + "old"), "o2")
    s = snap([], [orphan, stale])
    assert content_reads([a], s, NS, strict=False) == ["o1"]  # its content is read first
    s.contents["o1"] = BIG
    plan = make_plan([a], s, namespace=NS)
    assert plan.items[0].action == "create" and plan.items[0].reuse_id == "o1"
    assert not plan.items[0].needs_upload
    assert [o.id for o in plan.orphans] == ["o2"]


def test_an_orphan_is_not_reused_on_its_name_alone() -> None:
    """Name and size match, but the content read back differs (a UI edit) or could not be
    read: uploaded afresh, and the orphan cleaned up."""
    a = local("a.md", BIG)
    for contents in ({"o1": "y" + BIG[1:]}, {}):
        s = snap([], [remote(a, "o1")])
        s.contents.update(contents)
        plan = make_plan([a], s, namespace=NS)
        assert plan.items[0].reuse_id is None and plan.items[0].needs_upload
        assert [o.id for o in plan.orphans] == ["o1"]


def test_duplicates_are_collapsed() -> None:
    a = local("a.md", BIG)
    d1, d2 = remote(a, "d1"), remote(a, "d2")
    plan = make_plan([a], snap([entry(d1), entry(d2)], [d1, d2]), namespace=NS)
    item = plan.items[0]
    assert item.action == "update" and item.reuse_id == "d1"
    assert [r.id for r in item.replaces] == ["d2"]


def test_small_docs_policies() -> None:
    tiny = local("tiny.md", "short")
    assert make_plan([tiny], snap([], []), namespace=NS).items[0].usage_mode == "prompt"
    assert (
        make_plan([tiny], snap([], []), namespace=NS, small_docs="skip").items[0].action == "skip"
    )


def test_usage_mode_drift_is_repaired() -> None:
    tiny = local("tiny.md", "short")
    d = remote(tiny, "d1")
    plan = make_plan([tiny], snap([entry(d, "auto")], [d]), namespace=NS)
    assert plan.items[0].action == "update" and plan.items[0].reuse_id == "d1"


def test_legacy_entries_are_only_adopted_when_asked() -> None:
    a = local("2025-Q1.md", BIG)
    legacy = {"type": "text", "name": "2025-Q1", "id": "L1", "usage_mode": "auto"}
    plan = make_plan([a], snap([legacy], []), namespace=NS)
    assert plan.items[0].action == "create" and [r.id for r in plan.legacy] == ["L1"]
    assert plan.managed_ids == []
    plan = make_plan([a], snap([legacy], []), namespace=NS, adopt_legacy=True)
    assert plan.items[0].action == "adopt" and [r.id for r in plan.items[0].replaces] == ["L1"]
    assert plan.managed_ids == ["L1"]


def test_same_content_tolerates_trailing_newline_and_legacy_html() -> None:
    assert same_content("# T\n\nHello world\n", "# T\n\nHello world", "markdown")
    assert same_content("# T\n\nHello & world\n", "<h1>T</h1><p>Hello &amp; world</p>", "html")
    assert not same_content("# T\n\nHello world\n", "<p>Hello there</p>", "html")
    assert not same_content("abc", "abd", "markdown")
    table = "# Q\n\n- a **b** -5%\n\n| x | y |\n|---|---|\n| 1 | 2 |\n"
    rendered = "<h1>Q</h1><ul><li>a <b>b</b> -5%</li></ul><table><tr><td>x</td><td>y</td></tr>"
    assert same_content(table, rendered + "<tr><td>1</td><td>2</td></tr></table>", "html")
    assert not same_content("Loss -5%\n", "<p>Loss 5%</p>", "html")  # data signs count


def test_plan_render_groups_by_action_and_summarises() -> None:
    a, b = local("a.md", BIG), local("b.md", BIG + "b")
    da = remote(local("a.md", BIG + "old"), "d1")
    gone = remote(local("z.md", BIG + "z"), "d9")
    text = make_plan([a, b], snap([entry(da), entry(gone)], [da, gone]), namespace=NS).render()
    assert text.index("create (1):") < text.index("update (1):") < text.index("delete (1):")
    assert text.endswith("Plan: 1 to add, 1 to change, 1 to destroy.")


def test_kept_documents_outside_the_folder_are_moved_and_the_folder_is_created() -> None:
    a = local("a.md", BIG)
    d = {**remote(a, "d1"), "folder_parent_id": None}  # an earlier version's upload, at root
    s = snap([entry(d)], [d])
    plan = make_plan([a], Snapshot(s.agent, s.docs, layout=Layout(NS, None)), namespace=NS)
    assert [m.id for m in plan.moves] == ["d1"] and plan.has_changes and plan.creates_folder
    assert plan.summary() == "0 to add, 0 to change, 0 to destroy, 1 to move"
    assert "will create folder kb-sync" in plan.render()
