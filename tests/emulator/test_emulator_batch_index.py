"""``POST /v1/convai/knowledge-base/rag-index``: the batch compute behaves, item by item, as
the one-document compute does (docs/emulator.md, rows 31-31c for what is guessed)."""

from __future__ import annotations

from typing import Any

import pytest

from sync.clock import FakeClock
from sync.emulator import Backend, RemoteEmulator, no_batch_index, serve
from tests.emulator.emu_helpers import LONG, MODEL, Api

BATCH = "/knowledge-base/rag-index"


def item(doc_id: str, create: bool = True, model: str = MODEL) -> dict[str, Any]:
    return {"document_id": doc_id, "create_if_missing": create, "model": model}


def batch(api: Api, *items: dict[str, Any]) -> Any:
    r = api("POST", BATCH, json={"items": list(items)})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_batch_starts_indexes_and_polls_them_like_the_single_compute(
    api: Api, clock: FakeClock
) -> None:
    a, b = api.create(name="A"), api.create(name="B")
    first = batch(api, item(a), item(b))
    assert set(first) == {a, b}
    assert {v["status"] for v in first.values()} == {"success"}
    assert first[a]["data"]["status"] == "created" and first[a]["data"]["model"] == MODEL
    clock.advance(1.5)
    mid = batch(api, item(a), item(b))
    assert mid[a]["data"]["status"] == "processing"
    assert mid[a]["data"]["progress_percentage"] == 50.0
    assert mid[a]["data"]["id"] == first[a]["data"]["id"]  # the same index, not a new one
    clock.advance(2)
    assert batch(api, item(a))[a]["data"]["status"] == "succeeded"
    single = api("POST", f"/knowledge-base/{a}/rag-index", json={"model": MODEL}).json()
    assert single == batch(api, item(a))[a]["data"]


def test_unknown_documents_fail_per_item_and_the_others_still_index(api: Api) -> None:
    a = api.create(name="A")
    out = batch(api, item("nope"), item(a))
    assert out["nope"] == {
        "status": "failure",
        "error_code": 404,
        "error_status": "knowledge_base_documentation_not_found",
        "error_message": "Knowledge base documentation with id nope not found.",
    }
    assert out[a]["status"] == "success" and out[a]["data"]["status"] == "created"


def test_without_create_if_missing_nothing_starts(api: Api, backend: Backend) -> None:
    a = api.create(name="A")
    out = batch(api, item(a, create=False))
    assert out[a]["status"] == "failure" and out[a]["error_code"] == 404
    assert out[a]["error_status"] == "rag_index_not_found"
    assert backend.index_status(a) is None
    batch(api, item(a))
    assert batch(api, item(a, create=False))[a]["data"]["status"] == "created"


def test_folders_small_docs_and_the_quota_end_as_the_single_compute_ends_them(
    api: Api, backend: Backend
) -> None:
    folder = api("POST", "/knowledge-base/folder", json={"name": "F"}).json()["id"]
    small = api.create(text="short", name="Small")
    big1, big2 = api.create(name="Big 1"), api.create(name="Big 2")
    backend.set_quota(len(LONG.encode()) + 10)  # room for one of the two
    out = batch(api, item(folder), item(small), item(big1), item(big2))
    status = {k: v["data"]["status"] for k, v in out.items()}
    assert status == {
        folder: "cannot_index_folder",
        small: "document_too_small",
        big1: "created",  # items are handled in the order sent
        big2: "rag_limit_exceeded",
    }


def test_a_failed_index_is_restarted_by_the_next_batch_compute(
    api: Api, backend: Backend, clock: FakeClock
) -> None:
    a = api.create(name="Flaky")
    backend.set_index_behaviour("Flaky", "failed", times=1)
    batch(api, item(a))
    clock.advance(5)
    assert batch(api, item(a))[a]["data"]["status"] == "failed"
    assert batch(api, item(a))[a]["data"]["status"] == "created"  # started again
    assert batch(api, item(a, create=False))[a]["data"]["status"] == "created"


@pytest.mark.parametrize(
    ("items", "loc", "kind"),
    [
        ([], ["body", "items"], "too_short"),
        ([item(f"d{i}") for i in range(101)], ["body", "items"], "too_long"),
        ([item("a"), item("a")], ["body", "items"], "value_error"),
        ([{"document_id": "a", "model": MODEL}], ["body", "items", 0, "create_if_missing"],
         "missing"),
        ([item("a", model="ada")], ["body", "items", 0, "model"], "enum"),
    ],
)  # fmt: skip
def test_bad_batches_are_422_and_change_nothing(
    api: Api, backend: Backend, items: list[Any], loc: list[Any], kind: str
) -> None:
    r = api("POST", BATCH, json={"items": items})
    assert r.status_code == 422
    assert {"loc": loc, "type": kind}.items() <= r.json()["detail"][0].items()
    assert backend.indexes == {}


def test_exactly_100_items_are_accepted(api: Api) -> None:
    out = batch(api, *[item(f"missing{i}") for i in range(100)])
    assert len(out) == 100 and {v["status"] for v in out.values()} == {"failure"}


@pytest.mark.http
@pytest.mark.parametrize("status", [404, 405])
def test_a_server_without_the_batch_endpoint_over_http(backend: Backend, status: int) -> None:
    with serve(backend) as server:
        remote, api = RemoteEmulator(server.url), Api(server.url)
        a = api.create(name="A")
        remote.add_fault(no_batch_index(status))
        r = api("POST", BATCH, json={"items": [item(a)]})
        assert r.status_code == status
        assert r.json() == {"detail": "Not Found" if status == 404 else "Method Not Allowed"}
        assert backend.index_status(a) is None  # nothing was started
        assert api("GET", BATCH).status_code == 200  # the quota overview is still served
        assert api.index(a)  # and the one-document compute
