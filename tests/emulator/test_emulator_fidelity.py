"""What the emulator answers where API-NOTES and the spec say how the real API behaves:
branches, folders, dependents' branch entries, the plan's limits, ids, ``system_busy``."""

from __future__ import annotations

import re

import pytest

from sync.clock import FakeClock
from sync.emulator import Backend, emulate, system_busy
from tests.emulator.emu_helpers import BRANCH_KEYS, CHUNK_KEYS, LONG, Api

pytestmark = pytest.mark.emulator_only


def kb_patch(doc: str, name: str = "Doc") -> list[dict[str, str]]:
    return [{"type": "text", "name": name, "id": doc, "usage_mode": "auto"}]


# ----------------------------------------------------------------- ids


def test_ids_have_the_real_formats(api: Api, backend: Backend) -> None:
    agent = backend.seed_agent()
    doc = api.create()
    body = api.json("GET", f"/agents/{agent}")
    assert re.fullmatch(r"agent_[a-z0-9]{28}", agent)
    assert re.fullmatch(r"[A-Za-z0-9]{20}", doc)
    assert re.fullmatch(r"agtbranch_[a-z0-9]{28}", body["branch_id"])
    assert body["main_branch_id"] == body["branch_id"]
    assert re.fullmatch(r"agtvrsn_[a-z0-9]{28}", body["version_id"])


# ----------------------------------------------------------------- branches


def test_a_kb_change_on_a_branch_stays_off_main_until_merged(api: Api, backend: Backend) -> None:
    agent = backend.seed_agent()
    doc = backend.seed_document("Doc", LONG)
    main = api.json("GET", f"/agents/{agent}")
    created = api.json(
        "POST",
        f"/agents/{agent}/branches",
        json={"parent_version_id": main["version_id"], "name": "staging", "description": "s"},
    )
    branch = created["created_branch_id"]
    assert created["created_version_id"].startswith("agtvrsn_")
    r = api.set_kb(agent, kb_patch(doc), branch_id=branch)
    assert r.status_code == 200 and r.json()["branch_id"] == branch
    assert backend.agent_kb(agent) == []  # main untouched
    on_branch = api.json("GET", f"/agents/{agent}", params={"branch_id": branch})
    assert [e["id"] for e in on_branch["conversation_config"]["agent"]["prompt"]["knowledge_base"]]
    deps = api.json("GET", f"/knowledge-base/{doc}/dependent-agents")
    assert [(b["branch_id"], b["is_main"]) for b in deps["branches"]] == [(branch, False)]
    assert all(set(b) == BRANCH_KEYS for b in deps["branches"])
    assert [a["id"] for a in deps["agents"]] == [agent]
    assert api("DELETE", f"/knowledge-base/{doc}").status_code == 400  # a branch uses it
    q = {"target_branch_id": main["branch_id"]}
    api.json("POST", f"/agents/{agent}/branches/{branch}/merge", params=q, json={})
    assert [e["id"] for e in backend.agent_kb(agent)] == [doc]
    listed = api.json("GET", f"/agents/{agent}/branches")["results"]
    assert [b["name"] for b in listed] == ["Main"]  # the merged branch is archived
    listed = api.json("GET", f"/agents/{agent}/branches", params={"include_archived": "true"})
    staging = next(b for b in listed["results"] if b["id"] == branch)
    assert staging["is_archived"] and staging["merged_into_branch_id"] == main["branch_id"]


def test_branch_get_patch_and_unknown_ids(api: Api, backend: Backend) -> None:
    agent = backend.seed_agent()
    branch = backend.seed_branch(agent, "dev")
    view = api.json("GET", f"/agents/{agent}/branches/{branch}")
    assert view["name"] == "dev" and view["parent_branch"]["name"] == "Main"
    assert view["most_recent_versions"][0]["branch_id"] == branch
    renamed = api.json("PATCH", f"/agents/{agent}/branches/{branch}", json={"name": "qa"})
    assert renamed["name"] == "qa"
    r = api("PATCH", f"/agents/{agent}/branches/{branch}", json={"name": "Main"})
    assert r.status_code == 409
    for path in (f"/agents/{agent}", f"/agents/{agent}/knowledge-base/rag-query"):
        method = "GET" if path.endswith(agent) else "POST"
        r = api(method, path, params={"branch_id": "agtbranch_nope"}, json={"query": "x"})
        assert r.status_code == 404, path
    assert api.set_kb(agent, [], branch_id="agtbranch_nope").status_code == 404
    assert api("GET", f"/agents/{agent}/branches/agtbranch_nope").status_code == 404
    assert api("GET", f"/agents/{agent}/branches", params={"limit": 1}).status_code == 422


def test_merge_needs_the_target_and_checks_readiness(
    api: Api, backend: Backend, clock: FakeClock
) -> None:
    agent = backend.seed_agent()
    branch = backend.seed_branch(agent, "dev")
    doc = api.create()
    backend.attach(agent, doc, branch_id=branch)  # seeded: no readiness check
    merge = f"/agents/{agent}/branches/{branch}/merge"
    assert api("POST", merge, json={}).status_code == 422  # no target_branch_id
    main = api.json("GET", f"/agents/{agent}")["branch_id"]
    r = api("POST", merge, params={"target_branch_id": main}, json={})
    assert r.status_code == 422 and r.json()["detail"]["status"] == "rag_index_not_ready"
    api.index(doc)
    clock.advance(5)
    api.json("POST", merge, params={"target_branch_id": main}, json={})
    assert [e["id"] for e in backend.agent_kb(agent)] == [doc]


# ----------------------------------------------------------------- folders


def test_folders_paths_filters_and_move(api: Api, backend: Backend) -> None:
    top = api.json("POST", "/knowledge-base/folder", json={"name": "top"})
    sub = api.json(
        "POST", "/knowledge-base/folder", json={"name": "sub", "parent_folder_id": top["id"]}
    )
    assert sub["folder_path"] == [{"id": top["id"]}]
    doc = api.json(
        "POST",
        "/knowledge-base/text",
        json={"text": LONG, "name": "d", "parent_folder_id": sub["id"]},
    )
    assert doc["folder_path"] == [{"id": top["id"]}, {"id": sub["id"]}]
    got = api.json("GET", f"/knowledge-base/{doc['id']}")
    assert got["folder_parent_id"] == sub["id"]
    assert got["folder_path"] == [
        {"id": top["id"], "name": "top"},
        {"id": sub["id"], "name": "sub"},
    ]

    def ids(**params: str) -> set[str]:
        return {d["id"] for d in api.json("GET", "/knowledge-base", params=params)["documents"]}

    assert ids(parent_folder_id=top["id"]) == {sub["id"]}
    assert ids(ancestor_folder_id=top["id"]) == {sub["id"], doc["id"]}
    folder_item = next(
        d for d in api.json("GET", "/knowledge-base")["documents"] if d["id"] == top["id"]
    )
    assert folder_item["type"] == "folder" and folder_item["document_count"] == 1
    api.json("POST", f"/knowledge-base/{doc['id']}/move", json={"move_to": None})
    assert ids(ancestor_folder_id=top["id"]) == {sub["id"]}
    api.json(
        "POST",
        "/knowledge-base/bulk-move",
        json={"document_ids": [doc["id"]], "move_to": top["id"]},
    )
    assert ids(parent_folder_id=top["id"]) == {sub["id"], doc["id"]}
    r = api("POST", f"/knowledge-base/{top['id']}/move", json={"move_to": sub["id"]})
    assert r.status_code == 400  # never into itself
    assert api("POST", "/knowledge-base/bulk-move", json={"document_ids": []}).status_code == 422


def test_a_folders_document_count_stops_past_1000(api: Api, backend: Backend) -> None:
    """[spec] ``document_count``: "Counting stops past 1000" (the list item and the GET)."""
    folder = backend.seed_folder("big")
    sub = backend.seed_folder("sub", parent_folder_id=folder)
    for i in range(1002):
        backend.seed_document(f"d{i}", LONG, indexed_models=(), parent_folder_id=sub)
    listed = api.json("GET", "/knowledge-base", params={"types": "folder"})["documents"]
    counts = {d["id"]: d["document_count"] for d in listed}
    assert counts == {folder: 1001, sub: 1001}  # past 1000: it stopped counting
    assert api.json("GET", f"/knowledge-base/{folder}")["document_count"] == 1001
    backend.seed_document("one", LONG, indexed_models=(), parent_folder_id=folder)
    assert api.json("GET", f"/knowledge-base/{folder}")["document_count"] == 1001
    small = backend.seed_folder("small")
    backend.seed_document("d", LONG, indexed_models=(), parent_folder_id=small)
    assert api.json("GET", f"/knowledge-base/{small}")["document_count"] == 1  # exact below


def test_unknown_or_wrong_parent_folder(api: Api, backend: Backend) -> None:
    doc = api.create()
    body = {"text": LONG, "parent_folder_id": "nosuchfoldernosuchfo"}
    assert api("POST", "/knowledge-base/text", json=body).status_code == 404
    body = {"name": "f", "parent_folder_id": doc}
    assert api("POST", "/knowledge-base/folder", json=body).status_code == 400  # not a folder
    assert api("GET", "/knowledge-base", params={"parent_folder_id": "nope"}).status_code == 404
    assert api("POST", "/knowledge-base/folder", json={"name": ""}).status_code == 422


def test_a_folder_cannot_be_indexed_and_force_delete_takes_its_children(
    api: Api, backend: Backend
) -> None:
    agent = backend.seed_agent()
    folder = backend.seed_folder("f")
    inner = backend.seed_folder("g", parent_folder_id=folder)
    doc = backend.seed_document("d", LONG, parent_folder_id=inner, attach_to=[agent])
    assert api.index(folder)["status"] == "cannot_index_folder"
    assert api("DELETE", f"/knowledge-base/{folder}").status_code == 400  # not empty
    api.json("DELETE", f"/knowledge-base/{folder}", params={"force": "true"})
    assert not {folder, inner, doc} & set(backend.docs)
    assert backend.agent_kb(agent) == []


# ----------------------------------------------------------------- limits and errors


def test_a_doc_over_the_character_limit_uploads_but_cannot_be_attached(
    api: Api, clock: FakeClock
) -> None:
    backend = Backend(clock=clock, max_chars=1000)
    with emulate(backend):
        agent = backend.seed_agent()
        long_doc = api.create(text="word " * 300)  # 1,500 characters
        api.index(long_doc)
        clock.advance(5)
        r = api.set_kb(agent, kb_patch(long_doc))
        assert r.status_code == 422 and r.json()["detail"]["status"] == "rag_index_not_ready"
        backend.set_plan(max_chars=300_000)
        assert api.set_kb(agent, kb_patch(long_doc)).status_code == 200


def test_more_than_100_entries_in_one_patch_are_not_all_kept(api: Api, backend: Backend) -> None:
    agent = backend.seed_agent(rag_enabled=False)
    docs = [backend.seed_document(f"d{i}", LONG, indexed_models=()) for i in range(101)]
    kb = [{"type": "text", "name": f"d{i}", "id": d} for i, d in enumerate(docs)]
    r = api.set_kb(agent, kb)
    assert r.status_code == 200  # answered 200 ...
    assert len(backend.agent_kb(agent)) == 100  # ... but not all kept [field]
    backend.set_plan(max_patch_entries=None)
    assert api.set_kb(agent, kb).status_code == 200 and len(backend.agent_kb(agent)) == 101


def test_system_busy_fault(api: Api, backend: Backend) -> None:
    backend.add_fault(system_busy(path="/knowledge-base$"))
    r = api("GET", "/knowledge-base")
    assert r.status_code == 429 and "Retry-After" not in r.headers
    assert r.json()["detail"]["status"] == "system_busy"
    assert r.json()["detail"]["message"].startswith("We are sorry, the system is experiencing")


def test_stale_retrieval_serves_old_text_for_a_current_doc(api: Api, backend: Backend) -> None:
    agent = backend.seed_agent()
    doc = backend.seed_document("Doc", LONG, attach_to=[agent])
    backend.serve_stale(doc, "Delivery takes ten working days.\n\n" * 20)
    chunks = api.json(
        "POST", f"/agents/{agent}/knowledge-base/rag-query", json={"query": "delivery takes days"}
    )["chunks"]
    assert chunks and all(set(c) == CHUNK_KEYS for c in chunks)
    assert {c["text"] for c in chunks} == {"Delivery takes ten working days."}
    assert api("GET", f"/knowledge-base/{doc}/content").content.decode() == LONG
    backend.serve_stale(doc, None)
    chunks = api.json(
        "POST", f"/agents/{agent}/knowledge-base/rag-query", json={"query": "delivery takes days"}
    )["chunks"]
    assert chunks[0]["text"] == LONG.split("\n\n")[0]


def test_rag_query_settings_and_neutral_defaults(api: Api, backend: Backend) -> None:
    agent = backend.seed_agent()
    backend.seed_document("Doc", LONG, attach_to=[agent])
    rag = {"max_retrieved_rag_chunks_count": 2}
    body = {"conversation_config": {"agent": {"prompt": {"rag": rag}}}}
    api.json("PATCH", f"/agents/{agent}", json=body)
    path = f"/agents/{agent}/knowledge-base/rag-query"
    assert len(api.json("POST", path, json={"query": "delivery"})["chunks"]) == 2
    neutral = api.json("POST", path, json={"query": "delivery", "use_agent_defaults": False})
    assert len(neutral["chunks"]) == 12  # every paragraph: the spec's default count is 20
