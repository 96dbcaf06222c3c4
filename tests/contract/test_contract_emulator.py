"""Every emulator operation, checked against the vendored OpenAPI subset; and the checker
itself rejects shapes the spec does not allow."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import requests

from sync.clock import FakeClock
from sync.emulator import Backend, emulate, rate_limited, server_error, system_busy
from tests.contract.spec import ContractViolation, validate_call, validate_exchange

BASE = "https://api.elevenlabs.io"
API = BASE + "/v1/convai"
MODEL = "multilingual_e5_large_instruct"
LONG = "Orders ship within two working days.\n\n" * 20
JSON_CT = {"Content-Type": "application/json"}


def drive_everything(backend: Backend, clock: FakeClock) -> None:
    s = requests.Session()
    s.headers["xi-api-key"] = "test-key"
    agent = backend.seed_agent(name="Contract agent")
    backend.seed_document("Legacy", "Old text.\n\nMore.", content_format="html")

    def call(method: str, path: str, **kw: Any) -> requests.Response:
        return s.request(method, API + path, timeout=5, **kw)

    doc = call("POST", "/knowledge-base/text", json={"text": LONG, "name": "Shipping"}).json()["id"]
    call("POST", "/knowledge-base/text", json={"text": "short"})
    call("GET", "/knowledge-base")
    call("GET", "/knowledge-base", params={"page_size": 1, "types": ["text", "file"]})
    page = call("GET", "/knowledge-base", params={"page_size": 1}).json()
    call("GET", "/knowledge-base", params={"page_size": 1, "cursor": page["next_cursor"]})
    call("GET", "/knowledge-base", params={"search": "Ship", "sort_by": "name"})
    call("GET", f"/knowledge-base/{doc}")
    call("GET", f"/knowledge-base/{doc}/content")
    call("POST", f"/knowledge-base/{doc}/rag-index", json={"model": MODEL})
    clock.advance(1)
    call("POST", f"/knowledge-base/{doc}/rag-index", json={"model": MODEL})
    drive_batch_index(call, doc)
    kb = [{"type": "text", "name": "Shipping", "id": doc, "usage_mode": "auto"}]
    patch = {"conversation_config": {"agent": {"prompt": {"knowledge_base": kb}}}}
    call("PATCH", f"/agents/{agent}", json=patch)  # 422 rag_index_not_ready
    clock.advance(5)
    call("GET", f"/knowledge-base/{doc}/rag-index")
    call("GET", "/knowledge-base/rag-index")
    call("PATCH", f"/agents/{agent}", json=patch)
    call("GET", f"/agents/{agent}")
    call("GET", f"/agent/{agent}/knowledge-base/size")
    call("GET", f"/knowledge-base/{doc}/dependent-agents")
    call("POST", f"/agents/{agent}/knowledge-base/rag-query", json={"query": "ship"})
    drive_branches_and_folders(call, agent, doc)
    call("PATCH", f"/knowledge-base/{doc}", json={"name": "Shipping v2", "content": LONG + "x"})
    call("DELETE", f"/knowledge-base/{doc}")  # 400 dependent agents
    call("DELETE", f"/knowledge-base/{doc}", params={"force": "true"})
    # errors
    call("GET", "/knowledge-base", params={"page_size": 0})
    call("POST", "/knowledge-base/text", json={})
    call("GET", "/knowledge-base/nope")
    call("GET", "/agents/nope")
    s.get(API + "/knowledge-base", timeout=5, headers={"xi-api-key": "bad"})
    backend.add_fault(rate_limited(retry_after=None, path="/knowledge-base$"))
    call("GET", "/knowledge-base")
    backend.add_fault(system_busy(path="/knowledge-base$"))
    call("GET", "/knowledge-base")
    backend.add_fault(server_error(500, path="/knowledge-base$"))
    call("GET", "/knowledge-base")
    backend.add_fault(server_error(503, path="/knowledge-base$"))
    call("GET", "/knowledge-base")


def drive_batch_index(call: Any, doc: str) -> None:
    """The batch compute: successes, per-item failures, a get without create, and a 422."""

    def item(doc_id: str, create: bool = True) -> dict[str, Any]:
        return {"document_id": doc_id, "create_if_missing": create, "model": MODEL}

    fresh = call("POST", "/knowledge-base/text", json={"text": LONG, "name": "Fresh"}).json()["id"]
    batch = "/knowledge-base/rag-index"
    call("POST", batch, json={"items": [item(doc), item(fresh, False), item("missing")]})
    call("POST", batch, json={"items": [item(doc), item(fresh)]})
    call("POST", batch, json={"items": [item(f"d{i}") for i in range(101)]})  # 422: > 100
    call("POST", batch, json={"items": [item(doc), item(doc)]})  # 422: the same doc twice


def drive_branches_and_folders(call: Any, agent: str, doc: str) -> None:
    main = call("GET", f"/agents/{agent}").json()
    body = {"parent_version_id": main["version_id"], "name": "staging", "description": "d"}
    branch = call("POST", f"/agents/{agent}/branches", json=body).json()["created_branch_id"]
    kb = [{"type": "text", "name": "Shipping", "id": doc, "usage_mode": "auto"}]
    patch = {"conversation_config": {"agent": {"prompt": {"knowledge_base": kb}}}}
    call("PATCH", f"/agents/{agent}", params={"branch_id": branch}, json=patch)
    call("GET", f"/agents/{agent}", params={"branch_id": branch})
    call("GET", f"/agents/{agent}", params={"version_id": main["version_id"]})
    call("GET", f"/agents/{agent}/branches", params={"include_archived": "true"})
    call("GET", f"/agents/{agent}/branches/{branch}")
    call("PATCH", f"/agents/{agent}/branches/{branch}", json={"name": "staging-2"})
    call("POST", f"/agents/{agent}/knowledge-base/rag-query", params={"branch_id": branch},
         json={"query": "ship", "use_agent_defaults": False})  # fmt: skip
    call("GET", f"/knowledge-base/{doc}/dependent-agents")
    call("POST", "/knowledge-base/dependent-agents", json={"document_ids": [doc]})
    merge = f"/agents/{agent}/branches/{branch}/merge"
    call("POST", merge, params={"target_branch_id": main["branch_id"]}, json={"force": True})
    folder = call("POST", "/knowledge-base/folder", json={"name": "F"}).json()["id"]
    call("POST", "/knowledge-base/folder", json={"name": "G", "parent_folder_id": folder})
    call("POST", "/knowledge-base/text", json={"text": LONG, "parent_folder_id": folder})
    call("GET", f"/knowledge-base/{folder}")
    call("GET", "/knowledge-base", params={"ancestor_folder_id": folder, "folders_first": "true"})
    call("GET", "/knowledge-base", params={"parent_folder_id": folder, "types": ["folder"]})
    call("POST", f"/knowledge-base/{folder}/rag-index", json={"model": MODEL})
    batch_item = {"document_id": folder, "create_if_missing": True, "model": MODEL}
    call("POST", "/knowledge-base/rag-index", json={"items": [batch_item]})
    call("POST", f"/knowledge-base/{doc}/move", json={"move_to": folder})
    call("POST", "/knowledge-base/bulk-move", json={"document_ids": [doc], "move_to": None})
    call("POST", "/knowledge-base/text", json={"text": LONG, "parent_folder_id": "missing"})
    call("PATCH", f"/agents/{agent}", json={"conversation_config": {"agent": {"prompt": {
        "knowledge_base": [{"type": "text", "id": doc}]}}}})  # fmt: skip
    call("DELETE", f"/knowledge-base/{folder}", params={"force": "true"})


def test_every_emulator_exchange_matches_the_spec() -> None:
    clock = FakeClock()
    backend = Backend(clock=clock, seed=7)
    with emulate(backend):
        drive_everything(backend, clock)
    checked = skipped = 0
    statuses = set()
    for c in backend.calls:
        if validate_call(c):
            checked += 1
            statuses.add(c.status)
        else:
            skipped += 1
    assert skipped == 0  # every operation the emulator serves is in the subset
    assert checked == len(backend.calls)
    assert {200, 400, 401, 404, 422, 429, 500, 503} <= statuses


def test_hook_checks_every_exchange_as_it_happens() -> None:
    """The pattern other suites can copy: validate inside an after_request hook."""
    clock = FakeClock()
    backend = Backend(clock=clock)
    backend.after_request.append(lambda b, c: validate_call(c))
    with emulate(backend):
        drive_everything(backend, clock)


# ------------------------------------------------------------------ the checker catches lies


def _ok_doc() -> dict[str, Any]:
    backend = Backend()
    doc = backend.seed_document("d", LONG)
    with emulate(backend):
        r = requests.get(f"{API}/knowledge-base/{doc}", headers={"xi-api-key": "test-key"})
    data: dict[str, Any] = r.json()
    return data


def _ok_agent() -> dict[str, Any]:
    backend = Backend()
    agent = backend.seed_agent()
    return backend.agent_json(agent)


def _drop(path: list[str]) -> Any:
    def mutate(body: Any) -> Any:
        body = copy.deepcopy(body)
        node = body
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
        return body

    return mutate


def _set(path: list[Any], value: Any) -> Any:
    def mutate(body: Any) -> Any:
        body = copy.deepcopy(body)
        node = body
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return body

    return mutate


@pytest.mark.parametrize(
    ("method", "path", "status", "make", "mutate"),
    [
        ("GET", "/knowledge-base/x", 200, _ok_doc, _drop(["extracted_inner_html"])),
        ("GET", "/knowledge-base/x", 200, _ok_doc, _set(["metadata", "size_bytes"], "12")),
        ("GET", "/knowledge-base/x", 200, _ok_doc, _set(["content_format"], "rtf")),
        ("GET", "/agents/a", 200, _ok_agent, _drop(["metadata"])),
        ("GET", "/agents/a", 200, _ok_agent,
         _set(["conversation_config", "agent", "prompt", "knowledge_base"], [{"id": "x"}])),
        ("GET", "/agents/a", 200, _ok_agent,
         _set(["conversation_config", "agent", "prompt", "rag", "embedding_model"], "ada")),
        ("POST", "/knowledge-base/x/rag-index", 200,
         lambda: {"id": "i", "model": MODEL, "status": "SUCCEEDED", "progress_percentage": 100,
                  "document_model_index_usage": {"used_bytes": 1}}, lambda b: b),
        ("GET", "/knowledge-base", 200,
         lambda: {"documents": [{"id": "x", "name": "n", "type": "text"}], "has_more": False},
         lambda b: b),
        ("GET", "/knowledge-base/x/dependent-agents", 200,
         lambda: {"agents": [{"id": "a", "type": "available"}], "has_more": False}, lambda b: b),
        ("GET", "/knowledge-base", 422, lambda: {"detail": [{"loc": ["query"]}]}, lambda b: b),
        ("GET", "/knowledge-base/x", 404, lambda: {"detail": {"message": "no status"}},
         lambda b: b),
        ("GET", "/knowledge-base/x", 400, lambda: "not json", lambda b: b),
        ("GET", "/knowledge-base", 201, lambda: {}, lambda b: b),
    ],
)  # fmt: skip
def test_checker_rejects_shapes_the_spec_does_not_allow(
    method: str, path: str, status: int, make: Any, mutate: Any
) -> None:
    body = mutate(make())
    request_body = {"model": MODEL} if path.endswith("rag-index") else None
    with pytest.raises(ContractViolation):
        validate_exchange(method, API + path, request_body, status, JSON_CT, body)


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", "/knowledge-base/text", {"name": "no text"}),
        ("POST", "/knowledge-base/x/rag-index", {"model": "ada"}),
        ("GET", "/knowledge-base?page_size=500", None),
        ("GET", "/knowledge-base?types=pdf", None),
        ("PATCH", "/knowledge-base/x", {"name": ""}),
    ],
)
def test_checker_rejects_bad_requests(method: str, url: str, body: Any) -> None:
    with pytest.raises(ContractViolation):
        validate_exchange(method, API + url, body, 200, JSON_CT, {})


def test_checker_accepts_good_requests_and_skips_unknown_paths() -> None:
    assert validate_exchange(
        "GET", API + "/knowledge-base?types=text&types=file&page_size=5", None, 200, JSON_CT,
        {"documents": [], "has_more": False, "next_cursor": None},
    )  # fmt: skip
    assert not validate_exchange("GET", API + "/tools", None, 200, JSON_CT, {})


BATCH_REQUEST = {"items": [{"document_id": "d", "create_if_missing": True, "model": MODEL}]}
BATCH_DATA = {
    "id": "i",
    "model": MODEL,
    "status": "processing",
    "progress_percentage": 10.0,
    "document_model_index_usage": {"used_bytes": 1},
}


@pytest.mark.parametrize(
    "answer",
    [
        {"d": {"status": "success"}},  # no data
        {"d": {"status": "ok", "data": BATCH_DATA}},  # not a discriminator value
        {"d": {"status": "failure", "error_code": 404}},  # no error_status / message
        {"d": {"status": "success", "data": {**BATCH_DATA, "status": "SUCCEEDED"}}},
    ],
)
def test_checker_rejects_batch_answers_the_spec_does_not_allow(answer: dict[str, Any]) -> None:
    url = API + "/knowledge-base/rag-index"
    assert validate_exchange("POST", url, BATCH_REQUEST, 200, JSON_CT, {"d": {"status": "success",
                             "data": BATCH_DATA}})  # fmt: skip
    with pytest.raises(ContractViolation):
        validate_exchange("POST", url, BATCH_REQUEST, 200, JSON_CT, answer)
