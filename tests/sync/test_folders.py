"""Managed documents live in a KB folder named after the namespace (with .kb-sync inside)."""

from __future__ import annotations

import json

from sync.naming import fingerprint, managed_name
from sync.testing import is_upload

from .conftest import Kit, para


def folders(kit: Kit, name: str, parent: str | None = None) -> list[str]:
    return [
        i
        for i, d in kit.backend.docs.items()
        if d.is_folder and d.name == name and d.parent_id == parent
    ]


def test_the_first_push_creates_the_folder_and_puts_every_document_in_it(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    kit.write("b.md", para("b"))
    r = kit.push()
    assert r.code == 0, r.stderr
    [root] = folders(kit, "kb-sync")
    assert len(folders(kit, ".kb-sync", root)) == 1
    assert {d.parent_id for d in kit.managed_docs().values()} == {root}
    # the push says it created them (its printed plan is the one made under the lease)
    assert "Created folder kb-sync (and kb-sync/.kb-sync). Applied: 2 attached" in r.stdout
    kit.backend.clear_calls()
    again = kit.push("--json")
    assert again.code == 0 and kit.writes() == []  # converged: nothing to do
    kit.write("c.md", para("c"))
    third = kit.push("--json")
    assert third.code == 0 and "Created folder" not in third.stdout
    assert json.loads(third.stdout)["result"]["folder_created"] is False


def test_a_push_in_json_says_it_created_the_folder(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    r = kit.push("--json")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["result"]["folder_created"] is True


def test_plan_and_dry_run_create_nothing_not_even_the_folder(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    r = kit.kb("plan", "--dir", str(kit.dir))
    assert "will create folder kb-sync" in r.stdout
    assert kit.push("--dry-run").code == 0
    assert kit.writes() == [] and folders(kit, "kb-sync") == []


def test_managed_documents_left_at_the_root_are_moved_in_not_uploaded_again(kit: Kit) -> None:
    text = para("a")
    kit.write("a.md", text)
    name = managed_name("kb-sync", "a.md", fingerprint(kit.write("a.md", text).read_text()))
    old = kit.backend.seed_document(name, text, attach_to=[kit.agent_id])  # at the root
    r = kit.kb("plan", "--dir", str(kit.dir))
    assert "1 to move" in r.stdout and old in r.stdout
    r = kit.push()
    assert r.code == 0, r.stderr
    [root] = folders(kit, "kb-sync")
    assert kit.backend.docs[old].parent_id == root
    assert not [c for c in kit.backend.calls if is_upload(c)]
    assert [e["id"] for e in kit.backend.agent_kb(kit.agent_id)] == [old]


def test_the_folder_name_can_be_set(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    r = kit.kb("push", "--dir", str(kit.dir), env={**kit.env, "KB_SYNC_FOLDER": "Quarters"})
    assert r.code == 0, r.stderr
    [root] = folders(kit, "Quarters")
    assert {d.parent_id for d in kit.managed_docs().values()} == {root}
    assert folders(kit, "kb-sync") == []


def test_a_folder_create_race_ends_with_one_folder(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    fired: list[str] = []

    def other_machine(backend, call):  # type: ignore[no-untyped-def]
        if call.method == "POST" and call.path.endswith("/folder") and not fired:
            fired.append(backend.seed_folder("kb-sync"))  # the same moment, another run

    kit.backend.after_request.append(other_machine)
    r = kit.push()
    assert r.code == 0, r.stderr
    ours = next(
        str((c.response_json or {}).get("id"))
        for c in kit.backend.calls
        if c.path.endswith("/folder") and (c.request_json or {}).get("name") == "kb-sync"
    )
    both = {ours: kit.backend.docs.get(ours), fired[0]: kit.backend.docs[fired[0]]}
    created = {i: (int(d.created_at), i) for i, d in both.items() if d is not None}
    winner = min(created, key=lambda i: created[i]) if ours in created else fired[0]
    # every document is in the older folder; ours is gone if it lost (the other machine's
    # run, seeing ours older, would remove its own in turn)
    assert {d.parent_id for d in kit.managed_docs().values()} == {winner}
    assert ours == winner or ours not in kit.backend.docs


def test_a_renamed_folder_is_noticed_by_a_run_with_nothing_else_to_do(kit: Kit) -> None:
    """Why the folder is looked up by name in every run's listing, not trusted by the id
    the documents sit in (docs/performance.md, "Costs found by this benchmark")."""
    kit.write("a.md", para("a"))
    assert kit.push().code == 0
    [root] = folders(kit, "kb-sync")
    kit.backend.docs[root].name = "Archive 2026"  # a person renames it in the UI
    kit.backend.clear_calls()
    r = kit.push()
    assert r.code == 0, r.stderr
    assert "Nothing to do" not in r.stdout and "1 to move" in r.stdout
    [new] = folders(kit, "kb-sync")
    assert new != root and {d.parent_id for d in kit.managed_docs().values()} == {new}
    assert not [c for c in kit.backend.calls if is_upload(c)]
    assert root in kit.backend.docs  # not ours any more: left alone


def test_a_changed_folder_setting_moves_the_documents(kit: Kit) -> None:
    kit.write("a.md", para("a"))
    assert kit.push().code == 0
    r = kit.kb("push", "--dir", str(kit.dir), env={**kit.env, "KB_SYNC_FOLDER": "Quarters"})
    assert r.code == 0, r.stderr
    assert "1 to move" in r.stdout
    [quarters] = folders(kit, "Quarters")
    assert {d.parent_id for d in kit.managed_docs().values()} == {quarters}
    again = kit.push("--folder", "Quarters")
    assert again.code == 0 and "Nothing to do" in again.stdout
