"""The emulator's behaviours and faults, through real ``requests`` calls (in-process front)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from sync.clock import FakeClock
from sync.emulator import Backend, FaultRule, emulate, rate_limited, server_error
from tests.emulator.emu_helpers import BASE, BRANCH_KEYS, CHUNK_KEYS, LONG, MODEL, Api

pytestmark = pytest.mark.emulator_only

# ----------------------------------------------------------------- auth, routing, validation


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "key", "status", "detail"),
    [
        ("GET", "/knowledge-base", {}, None, 401, {"status": "needs_authorization"}),
        ("GET", "/knowledge-base", {}, "wrong", 401, {"status": "invalid_api_key"}),
        ("GET", "/no-such-route", {}, "test-key", 404, "Not Found"),
        ("PUT", "/knowledge-base/text", {}, "test-key", 405, "Method Not Allowed"),
        ("GET", "/knowledge-base/nope", {}, "test-key", 404,
         {"status": "knowledge_base_documentation_not_found"}),
        ("GET", "/knowledge-base/nope/content", {}, "test-key", 404,
         {"status": "knowledge_base_documentation_not_found"}),
        ("DELETE", "/knowledge-base/nope", {}, "test-key", 404,
         {"status": "knowledge_base_documentation_not_found"}),
        ("GET", "/agents/agent_nope", {}, "test-key", 404, {"status": "agent_not_found"}),
        ("GET", "/agent/agent_nope/knowledge-base/size", {}, "test-key", 404,
         {"status": "agent_not_found"}),
    ],
)  # fmt: skip
def test_auth_and_routing_errors(
    backend: Backend,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    key: str | None,
    status: int,
    detail: Any,
) -> None:
    with emulate(backend):
        r = Api(BASE, key)(method, path, **kwargs)
    assert r.status_code == status
    assert "request-id" in r.headers
    body = r.json()["detail"]
    if isinstance(detail, dict):
        assert detail.items() <= body.items()
        assert isinstance(body["message"], str)
    else:
        assert body == detail


def test_any_key_accepted_when_api_key_none(clock: FakeClock) -> None:
    backend = Backend(api_key=None, clock=clock)
    with emulate(backend):
        assert Api(BASE, "whatever")("GET", "/knowledge-base").status_code == 200
        assert Api(BASE, None)("GET", "/knowledge-base").status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "loc", "type_"),
    [
        ("POST", "/knowledge-base/text", {"json": {"name": "x"}}, ["body", "text"], "missing"),
        ("POST", "/knowledge-base/text", {"json": {"text": 5}}, ["body", "text"], "string_type"),
        ("POST", "/knowledge-base/text", {"json": {"text": "a", "name": ""}}, ["body", "name"],
         "string_too_short"),
        ("POST", "/knowledge-base/text", {"data": b"{not json"}, ["body", 1], "json_invalid"),
        ("POST", "/knowledge-base/text", {}, ["body"], "missing"),
        ("GET", "/knowledge-base", {"params": {"page_size": 0}}, ["query", "page_size"],
         "greater_than_equal"),
        ("GET", "/knowledge-base", {"params": {"page_size": 101}}, ["query", "page_size"],
         "less_than_equal"),
        ("GET", "/knowledge-base", {"params": {"page_size": "x"}}, ["query", "page_size"],
         "int_parsing"),
        ("GET", "/knowledge-base", {"params": {"types": ["text", "pdf"]}}, ["query", "types", 1],
         "enum"),
        ("GET", "/knowledge-base", {"params": {"cursor": "!!!"}}, ["query", "cursor"],
         "value_error"),
    ],
)  # fmt: skip
def test_validation_errors_have_fastapi_shape(
    api: Api, method: str, path: str, kwargs: dict[str, Any], loc: list[Any], type_: str
) -> None:
    r = api(method, path, **kwargs)
    assert r.status_code == 422, r.text
    (err,) = r.json()["detail"]
    assert err["loc"] == loc
    assert err["type"] == type_
    assert isinstance(err["msg"], str)


@pytest.mark.parametrize(
    ("body", "loc", "type_"),
    [
        ({"model": "nope"}, ["body", "model"], "enum"),
        ({}, ["body", "model"], "missing"),
    ],
)
def test_rag_index_validation(api: Api, body: dict[str, Any], loc: list[Any], type_: str) -> None:
    doc = api.create()
    r = api("POST", f"/knowledge-base/{doc}/rag-index", json=body)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == loc
    assert r.json()["detail"][0]["type"] == type_


# ----------------------------------------------------------------- documents


def test_create_text_doc(api: Api, backend: Backend, clock: FakeClock) -> None:
    r = api("POST", "/knowledge-base/text", json={"text": "Привет мир", "name": "ru"})
    assert r.status_code == 200
    body = r.json()
    assert body == {"id": body["id"], "name": "ru", "folder_path": []}
    assert len(body["id"]) == 20 and body["id"].isalnum()
    doc = backend.docs[body["id"]]
    assert doc.size_bytes == len("Привет мир".encode()) == 19
    assert doc.content_format == "markdown"
    assert doc.created_at == clock.now()
    got = api("GET", f"/knowledge-base/{body['id']}").json()
    assert got["content_format"] == "markdown"
    assert got["metadata"]["size_bytes"] == 19
    assert got["extracted_inner_html"] == "<p>Привет мир</p>"


def test_names_are_not_unique_and_default_name(api: Api, backend: Backend) -> None:
    a, b = api.create(name="Same"), api.create(name="Same")
    assert a != b and backend.docs[a].name == backend.docs[b].name == "Same"
    c = api.create(text="Returns are free within thirty days of delivery always", name=None)
    assert backend.docs[c].name == "Returns are free within thirty days"


def test_list_newest_first_paged_with_cursor(api: Api, clock: FakeClock) -> None:
    ids = []
    for i in range(7):
        ids.append(api.create(name=f"doc {i}"))
        clock.advance(1)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"page_size": 3}
        if cursor:
            params["cursor"] = cursor
        page = api("GET", "/knowledge-base", params=params).json()
        seen += [d["id"] for d in page["documents"]]
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
        api.create(name="created while paging")  # newer: must not shift the pages
    assert seen == list(reversed(ids))
    assert "text" not in page["documents"][0]


def test_list_search_types_and_sort(api: Api) -> None:
    api.create(name="FAQ shipping")
    api.create(name="faq returns")
    api.create(name="About us")
    names = {
        d["name"]
        for d in api("GET", "/knowledge-base", params={"search": "FAQ"}).json()["documents"]
    }
    assert names == {"FAQ shipping", "faq returns"}  # prefix, case-insensitive [guess]
    only_files = api("GET", "/knowledge-base", params={"types": ["file", "url"]}).json()
    assert only_files["documents"] == []
    both = api("GET", "/knowledge-base", params={"types": ["file", "text"]}).json()
    assert len(both["documents"]) == 3
    by_name = api("GET", "/knowledge-base", params={"sort_by": "name", "sort_direction": "asc"})
    assert [d["name"] for d in by_name.json()["documents"]] == [
        "About us",
        "FAQ shipping",
        "faq returns",
    ]


def test_content_markdown_and_legacy_html(api: Api, backend: Backend) -> None:
    md = api.create(text="# Title\n\nA & B")
    r = api("GET", f"/knowledge-base/{md}/content")
    assert r.headers["Content-Type"] == "text/html"  # no charset [spec + assumed]
    assert r.content.decode("utf-8") == "# Title\n\nA & B"
    legacy = backend.seed_document("Old", "Para one.\n\nFish & <chips>", content_format="html")
    r = api("GET", f"/knowledge-base/{legacy}/content")
    assert r.text == "<p>Para one.</p><p>Fish &amp; &lt;chips&gt;</p>"
    assert api("GET", f"/knowledge-base/{legacy}").json()["content_format"] == "html"


def test_patch_doc_name_and_content_restarts_indexes(
    api: Api, backend: Backend, clock: FakeClock
) -> None:
    doc = api.create()
    api.index(doc)
    clock.advance(5)
    assert backend.index_status(doc, MODEL) == "succeeded"
    r = api("PATCH", f"/knowledge-base/{doc}", json={"name": "Renamed"})
    assert r.status_code == 200 and r.json()["name"] == "Renamed"
    assert backend.index_status(doc, MODEL) == "succeeded"
    new_text = LONG + "More."
    r = api("PATCH", f"/knowledge-base/{doc}", json={"content": new_text})
    assert r.json()["metadata"]["size_bytes"] == len(new_text.encode())
    assert backend.index_status(doc, MODEL) == "created"
    clock.advance(3)
    assert api.index(doc)["status"] == "succeeded"
    r = api("PATCH", f"/knowledge-base/{doc}", json={"name": ""})
    assert r.status_code == 422


def test_delete_blocked_by_dependent_agent_then_force(api: Api, backend: Backend) -> None:
    a1 = backend.seed_agent(name="one")
    a2 = backend.seed_agent(name="two")
    doc = backend.seed_document("Shared", LONG, attach_to=[a1, a2])
    deps = api("GET", f"/knowledge-base/{doc}/dependent-agents").json()
    assert {d["id"] for d in deps["agents"]} == {a1, a2}
    assert deps["agents"][0]["type"] == "available"
    assert deps["agents"][0]["access_level"] == "admin"
    assert deps["has_more"] is False
    assert [(b["agent_id"], b["agent_name"], b["is_main"]) for b in deps["branches"]] == [
        (a1, "one", True),
        (a2, "two", True),
    ]
    assert all(set(b) == BRANCH_KEYS and b["branch_id"].startswith("agtbranch_")
               for b in deps["branches"])  # fmt: skip
    r = api("DELETE", f"/knowledge-base/{doc}")
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert detail["code"] == detail["status"] == "document_has_dependent_agents"
    assert detail["request_id"] == r.headers["request-id"]
    assert doc in backend.docs
    v1, v2 = backend.agent_version(a1), backend.agent_version(a2)
    r = api("DELETE", f"/knowledge-base/{doc}", params={"force": "true"})
    assert r.status_code == 200 and r.json() == {}
    assert doc not in backend.docs
    assert backend.agent_kb(a1) == backend.agent_kb(a2) == []
    assert backend.agent_version(a1) == v1 + 1 and backend.agent_version(a2) == v2 + 1
    assert backend.used_bytes() == 0


def test_delete_unattached_frees_quota(api: Api, backend: Backend, clock: FakeClock) -> None:
    doc = api.create()
    api.index(doc)
    clock.advance(3)
    assert api("GET", "/knowledge-base/rag-index").json()["total_used_bytes"] == len(LONG)
    assert api("DELETE", f"/knowledge-base/{doc}").status_code == 200
    overview = api("GET", "/knowledge-base/rag-index").json()
    assert overview["total_used_bytes"] == 0 and overview["models"] == []
    assert api("GET", f"/knowledge-base/{doc}").status_code == 404


def test_linger_blocks_deletes_after_detach(api: Api, backend: Backend) -> None:
    agent = backend.seed_agent()
    doc = backend.seed_document("Doc", LONG, attach_to=[agent])
    backend.linger(2)
    assert api.set_kb(agent, []).status_code == 200
    deps = api("GET", f"/knowledge-base/{doc}/dependent-agents").json()["agents"]
    assert [d["id"] for d in deps] == [agent]
    assert api("DELETE", f"/knowledge-base/{doc}").status_code == 400
    assert api("DELETE", f"/knowledge-base/{doc}").status_code == 400
    assert api("GET", f"/knowledge-base/{doc}/dependent-agents").json()["agents"] == []
    assert api("DELETE", f"/knowledge-base/{doc}").status_code == 200


def test_delete_bad_force_value_is_422(api: Api) -> None:
    doc = api.create()
    r = api("DELETE", f"/knowledge-base/{doc}", params={"force": "maybe"})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "bool_parsing"


# ----------------------------------------------------------------- RAG indexes


def test_index_lifecycle_on_the_clock(api: Api, backend: Backend, clock: FakeClock) -> None:
    doc = api.create()
    first = api.index(doc)
    assert first["status"] == "created" and first["progress_percentage"] == 0
    assert first["document_model_index_usage"]["used_bytes"] == len(LONG)
    clock.advance(1.5)
    mid = api.index(doc)
    assert mid["status"] == "processing" and mid["id"] == first["id"]
    assert 0 < mid["progress_percentage"] < 100
    clock.advance(1.5)
    done = api.index(doc)
    assert done["status"] == "succeeded" and done["progress_percentage"] == 100
    listed = api("GET", f"/knowledge-base/{doc}/rag-index").json()["indexes"]
    assert [i["id"] for i in listed] == [first["id"]]
    other = api.index(doc, "e5_mistral_7b_instruct")
    assert other["id"] != first["id"] and other["status"] == "created"
    overview = api("GET", "/knowledge-base/rag-index").json()
    assert overview["total_used_bytes"] == 2 * len(LONG)
    assert {m["model"] for m in overview["models"]} == {MODEL, "e5_mistral_7b_instruct"}


def test_small_doc_is_document_too_small_by_bytes(api: Api, backend: Backend) -> None:
    cyrillic = "я" * 249  # 498 bytes, 249 characters
    doc = api.create(text=cyrillic)
    r = api.index(doc)
    assert r["status"] == "document_too_small"
    assert r["document_model_index_usage"]["used_bytes"] == 0
    ok = api.create(text="я" * 250)  # 500 bytes
    assert api.index(ok)["status"] == "created"


def test_quota_exceeded(api: Api, backend: Backend, clock: FakeClock) -> None:
    backend.set_quota(len(LONG) * 2)
    a, b, c = api.create(), api.create(), api.create()
    assert api.index(a)["status"] == "created"
    assert api.index(b)["status"] == "created"
    assert api.index(c)["status"] == "rag_limit_exceeded"
    assert api("GET", "/knowledge-base/rag-index").json()["total_max_bytes"] == len(LONG) * 2
    api("DELETE", f"/knowledge-base/{a}")
    assert api.index(c)["status"] == "created"  # computing again re-checks the quota [guess]


@pytest.mark.parametrize("match_by", ["id", "prefix"])
def test_index_behaviour_failed_then_restart(
    api: Api, backend: Backend, clock: FakeClock, match_by: str
) -> None:
    if match_by == "prefix":
        backend.set_index_behaviour("Broken", "failed", times=1)
        doc = api.create(name="Broken doc")  # created after the rule: still targeted
    else:
        doc = api.create(name="Doc")
        backend.set_index_behaviour(doc, "failed", times=1)
    api.index(doc)
    clock.advance(3)
    failed = api.index(doc)
    assert failed["status"] == "failed"  # the call that finds it failed reports it
    assert backend.index_status(doc, MODEL) == "failed"
    assert api.index(doc)["status"] == "created"  # computing again restarts it
    clock.advance(3)
    assert api.index(doc)["status"] == "succeeded"


def test_index_behaviour_failed_observed_via_list(
    api: Api, backend: Backend, clock: FakeClock
) -> None:
    backend.set_index_behaviour("Bad", "failed", times=None)
    doc = api.create(name="Bad")
    api.index(doc)
    clock.advance(10)
    (idx,) = api("GET", f"/knowledge-base/{doc}/rag-index").json()["indexes"]
    assert idx["status"] == "failed" and idx["document_model_index_usage"]["used_bytes"] == 0


def test_index_behaviour_stuck(api: Api, backend: Backend, clock: FakeClock) -> None:
    backend.set_index_behaviour("Slow", "stuck")
    doc = api.create(name="Slow one")
    api.index(doc)
    clock.advance(3600)
    assert api.index(doc)["status"] == "processing"


def test_set_index_behaviour_rejects_unknown(backend: Backend) -> None:
    with pytest.raises(ValueError):
        backend.set_index_behaviour("x", "explode")


# ----------------------------------------------------------------- agents


def test_get_agent_shape(api: Api, backend: Backend) -> None:
    agent = backend.seed_agent(name="Support", embedding_model=MODEL)
    body = api("GET", f"/agents/{agent}").json()
    assert body["agent_id"] == agent and body["name"] == "Support"
    assert agent.startswith("agent_") and len(agent) == len("agent_") + 28
    prompt = body["conversation_config"]["agent"]["prompt"]
    assert prompt["knowledge_base"] == []
    assert prompt["rag"]["enabled"] is True and prompt["rag"]["embedding_model"] == MODEL
    assert body["conversation_config"]["agent"]["first_message"]
    assert body["conversation_config"]["agent"]["language"] == "en"
    assert {"created_at_unix_secs", "updated_at_unix_secs"} <= body["metadata"].keys()
    assert body["version_id"]


def test_patch_agent_attach_requires_ready_index(
    api: Api, backend: Backend, clock: FakeClock
) -> None:
    agent = backend.seed_agent()
    doc = api.create(name="Doc")
    api.index(doc)
    v0 = backend.agent_version(agent)
    locator = {"type": "text", "name": "Doc", "id": doc}
    r = api.set_kb(agent, [locator])
    assert r.status_code == 422
    assert r.json()["detail"]["code"] == "rag_index_not_ready"
    assert backend.agent_kb(agent) == [] and backend.agent_version(agent) == v0
    # prompt mode needs no index
    r = api.set_kb(agent, [{**locator, "usage_mode": "prompt"}])
    assert r.status_code == 200
    assert backend.agent_version(agent) == v0 + 1
    clock.advance(3)
    api.index(doc)
    r = api.set_kb(agent, [locator])
    assert r.status_code == 200
    kb = r.json()["conversation_config"]["agent"]["prompt"]["knowledge_base"]
    assert kb == [{**locator, "usage_mode": "auto"}]
    assert backend.agent_version(agent) == v0 + 2


def test_patch_agent_index_must_match_agent_model(
    api: Api, backend: Backend, clock: FakeClock
) -> None:
    agent = backend.seed_agent(embedding_model="e5_mistral_7b_instruct")
    doc = backend.seed_document("Doc", LONG, indexed_models=[MODEL])
    r = api.set_kb(agent, [{"type": "text", "name": "Doc", "id": doc}])
    assert r.status_code == 422 and r.json()["detail"]["status"] == "rag_index_not_ready"


def test_patch_agent_rag_disabled_needs_no_index(api: Api, backend: Backend) -> None:
    agent = backend.seed_agent(rag_enabled=False)
    doc = api.create()
    assert api.set_kb(agent, [{"type": "text", "name": "D", "id": doc}]).status_code == 200


@pytest.mark.parametrize(
    ("locator", "loc_tail", "type_"),
    [
        ({"type": "text", "name": "n"}, [0, "id"], "missing"),
        ({"type": "text", "id": "x"}, [0, "name"], "missing"),
        ({"name": "n", "id": "x"}, [0, "type"], "missing"),
        ({"type": "pdf", "name": "n", "id": "x"}, [0, "type"], "enum"),
        ({"type": "text", "name": "n", "id": "x", "usage_mode": "sometimes"}, [0, "usage_mode"],
         "enum"),
    ],
)  # fmt: skip
def test_patch_agent_locator_validation(
    api: Api, backend: Backend, locator: dict[str, Any], loc_tail: list[Any], type_: str
) -> None:
    """400 input_invalid naming the field, not a FastAPI 422 list [field, one report]."""
    agent = backend.seed_agent()
    r = api.set_kb(agent, [locator])
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert detail["status"] == "input_invalid"
    loc = ["body", "conversation_config", "agent", "prompt", "knowledge_base"] + loc_tail
    words = "Field required" if type_ == "missing" else "Input should be"
    assert detail["message"].startswith(words) and detail["message"].endswith(f": {loc}")
    assert backend.agent_kb(agent) == []


def test_patch_agent_unknown_doc_is_404(api: Api, backend: Backend) -> None:
    agent = backend.seed_agent()
    r = api.set_kb(agent, [{"type": "text", "name": "n", "id": "missingmissingmissin"}])
    assert r.status_code == 404
    assert r.json()["detail"]["status"] == "knowledge_base_documentation_not_found"


def test_patch_agent_deep_merges_objects_and_replaces_arrays(api: Api, backend: Backend) -> None:
    agent = backend.seed_agent(rag_enabled=False)
    d1, d2 = api.create(name="one"), api.create(name="two")
    api.set_kb(agent, [{"type": "text", "name": "one", "id": d1}])
    r = api(
        "PATCH",
        f"/agents/{agent}",
        json={"name": "New", "conversation_config": {"agent": {"first_message": "Hey"}}},
    )
    body = r.json()
    assert body["name"] == "New"
    assert body["conversation_config"]["agent"]["first_message"] == "Hey"
    prompt = body["conversation_config"]["agent"]["prompt"]
    assert prompt["prompt"] and [k["id"] for k in prompt["knowledge_base"]] == [d1]
    api.set_kb(agent, [{"type": "text", "name": "two", "id": d2}])
    assert [k["id"] for k in backend.agent_kb(agent)] == [d2]  # replaced, not appended


def test_agent_kb_size(api: Api, backend: Backend) -> None:
    agent = backend.seed_agent()
    backend.seed_document("a", "x" * 3000, attach_to=[agent])
    backend.seed_document("b", "y" * 1000, attach_to=[agent], usage_mode="prompt")
    r = api("GET", f"/agent/{agent}/knowledge-base/size")
    assert r.json() == {"number_of_pages": 2.0}


def test_rag_query_lexical_cyrillic_and_modes(api: Api, backend: Backend) -> None:
    agent = backend.seed_agent()
    text = "Доставка занимает три дня.\n\nВозврат бесплатный в течение месяца.\n\n" + "ё" * 300
    auto = backend.seed_document("Правила", text, attach_to=[agent])
    backend.seed_document("Prompt doc", "Доставка курьером " * 40, attach_to=[agent],
                          usage_mode="prompt")  # fmt: skip
    unindexed = backend.seed_document("Unindexed", "Доставка " * 100, indexed_models=())
    backend.attach(agent, unindexed)
    r = api("POST", f"/agents/{agent}/knowledge-base/rag-query", json={"query": "доставка дня"})
    body = r.json()
    assert body["retrieval_query"] == "доставка дня"
    chunks = body["chunks"]
    assert [c["document_id"] for c in chunks] == [auto]
    assert set(chunks[0]) == CHUNK_KEYS  # no `content`, no `score` [spec]
    assert chunks[0]["text"] == "Доставка занимает три дня."
    assert chunks[0]["vector_distance"] == 0.0 and chunks[0]["document_name"] == "Правила"
    assert chunks[0]["content_format"] == "markdown" and chunks[0]["document_type"] == "text"
    assert chunks[0]["chunk_id"].startswith("chunk_")
    for bad in ({}, {"query": ""}, {"query": "x", "use_agent_defaults": "yes"}):
        r = api("POST", f"/agents/{agent}/knowledge-base/rag-query", json=bad)
        assert r.status_code == 422


def test_rag_query_rag_disabled_is_400(api: Api, backend: Backend) -> None:
    agent = backend.seed_agent(rag_enabled=False)
    r = api("POST", f"/agents/{agent}/knowledge-base/rag-query", json={"query": "x"})
    assert r.status_code == 400 and r.json()["detail"]["code"] == "rag_not_enabled"


# ----------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("rule", "status", "header", "check"),
    [
        (rate_limited(), 429, None, "concurrent_limit_exceeded"),
        (rate_limited(retry_after=2), 429, "2", "concurrent_limit_exceeded"),
        (server_error(503), 503, None, "service_unavailable"),
        (FaultRule(status=418, body={"detail": "teapot"}, headers={"X-Why": "tea"}), 418, None,
         "teapot"),
    ],
)  # fmt: skip
def test_status_faults_answer_instead_and_have_no_effect(
    api: Api, backend: Backend, rule: FaultRule, status: int, header: str | None, check: str
) -> None:
    rule.method, rule.path = "POST", r"/knowledge-base/text$"
    backend.add_fault(rule)
    r = api("POST", "/knowledge-base/text", json={"text": LONG})
    assert r.status_code == status
    assert r.headers.get("Retry-After") == header
    assert check in r.text
    if status == 429:
        assert r.json()["detail"]["request_id"] == r.headers["request-id"]
    assert backend.docs == {}
    assert backend.calls[-1].fault and backend.calls[-1].status == status
    assert api("POST", "/knowledge-base/text", json={"text": LONG}).status_code == 200  # times=1


def test_server_error_500_is_plain_text(api: Api, backend: Backend) -> None:
    backend.add_fault(server_error(500, path="/knowledge-base$", times=2))
    for _ in range(2):
        r = api("GET", "/knowledge-base")
        assert r.status_code == 500 and r.text == "Internal Server Error"
    assert api("GET", "/knowledge-base").status_code == 200


def test_fault_times_none_is_forever_and_method_filter(api: Api, backend: Backend) -> None:
    backend.add_fault(FaultRule(method="GET", path="/knowledge-base", times=None, status=502))
    for _ in range(3):
        assert api("GET", "/knowledge-base").status_code == 502
    assert api("POST", "/knowledge-base/text", json={"text": "x"}).status_code == 200
    backend.clear_faults()
    assert api("GET", "/knowledge-base").status_code == 200


def test_latency_advances_fake_clock(api: Api, backend: Backend, clock: FakeClock) -> None:
    backend.add_fault(FaultRule(path="/knowledge-base$", latency=7.5))
    t0 = clock.now()
    assert api("GET", "/knowledge-base").status_code == 200
    assert clock.now() - t0 == pytest.approx(7.5)


def test_drop_after_commit_raises_and_commits(api: Api, backend: Backend) -> None:
    backend.add_fault(FaultRule(method="POST", path="/knowledge-base/text", drop_after_commit=True))
    with pytest.raises(requests.exceptions.ConnectionError):
        api("POST", "/knowledge-base/text", json={"text": LONG, "name": "ghost"})
    assert [d.name for d in backend.docs.values()] == ["ghost"]
    assert backend.calls[-1].dropped and backend.calls[-1].status == 200


def test_fault_rule_rejects_status_with_drop() -> None:
    with pytest.raises(ValueError):
        FaultRule(status=500, drop_after_commit=True)


# ----------------------------------------------------------------- call log, hooks, misc


def test_call_log_never_stores_key_and_records_json(api: Api, backend: Backend) -> None:
    doc = api.create(name="logged")
    api("GET", "/knowledge-base", params={"page_size": 5, "types": ["text", "file"]})
    api("GET", f"/knowledge-base/{doc}/content")
    first, listing, content = backend.calls
    assert first.method == "POST" and first.request_json == {"text": LONG, "name": "logged"}
    assert first.response_json["id"] == doc and first.status == 200
    assert listing.query == {"page_size": ["5"], "types": ["text", "file"]}
    assert content.response_json is None and content.response_text == LONG
    assert "test-key" not in repr(backend.calls)
    backend.clear_calls()
    assert backend.calls == []


def test_after_request_hook_sees_calls_and_its_errors_propagate(api: Api, backend: Backend) -> None:
    seen: list[str] = []
    backend.after_request.append(lambda b, call: seen.append(f"{call.method} {call.status}"))
    api("GET", "/knowledge-base")
    assert seen == ["GET 200"]

    def invariant(b: Backend, call: Any) -> None:
        raise AssertionError("invariant broken")

    backend.after_request.append(invariant)
    with pytest.raises(AssertionError, match="invariant broken"):
        api("GET", "/knowledge-base")


def test_other_urls_are_not_passed_through(backend: Backend) -> None:
    with emulate(backend), pytest.raises(requests.exceptions.ConnectionError):
        requests.get("https://example.com/", timeout=1)


def test_reset_forgets_everything(api: Api, backend: Backend) -> None:
    backend.seed_document("d", LONG, attach_to=[backend.seed_agent()])
    backend.add_fault(rate_limited())
    backend.reset()
    assert backend.docs == {} and backend.agents == {} and backend.faults == []
    assert api("GET", "/knowledge-base").json()["documents"] == []


def test_seed_document_finished_indexes(backend: Backend) -> None:
    big = backend.seed_document("big", LONG)
    small = backend.seed_document("small", "tiny")
    assert backend.index_status(big, MODEL) == "succeeded"
    assert backend.index_status(small, MODEL) == "document_too_small"
    assert backend.index_status(big, "e5_mistral_7b_instruct") is None
    state = backend.state()
    assert {d["name"] for d in state["documents"]} == {"big", "small"}
    assert state["quota"]["total_used_bytes"] == len(LONG)


def test_the_quota_counts_what_the_other_indexes_use_at_the_moment_of_a_compute(
    api: Api, backend: Backend
) -> None:
    """The quota check's shortcut (an upper bound, nothing observed) must decide as the exact
    use would: a pending index counts, a failed one does not, even when nobody has looked at
    it since it failed."""
    size = len(LONG.encode())
    backend.set_quota(size + size // 2)  # room for one document, not two
    first = api.create()
    backend.set_index_behaviour(first, "failed", times=1)
    assert api.index(first)["status"] in ("created", "processing")
    second = api.create(name="Other")
    assert api.index(second)["status"] == "rag_limit_exceeded"  # the first is still pending
    backend.advance(10.0)  # the first has failed by now; nobody has polled it
    third = api.create(name="Third")
    assert api.index(third)["status"] in ("created", "processing")  # its bytes are free again
