"""RAG indexes computed and polled in batches, overlapped with the uploads, at the server's
pace (issue 16); the per-document calls when the server has no batch endpoint."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import responses

from sync.client import Client
from sync.clock import FakeClock
from sync.emulator import Backend, FaultRule, emulate, no_batch_index
from sync.errors import ExitCode
from sync.indexing import Indexer, IndexOptions
from sync.pacing import Pace, PaceOptions
from sync.plan import Item
from sync.results import DocResult
from tests.canary import CANARY_KEY

from .conftest import MODEL, Kit, para

BASE = "https://api.elevenlabs.io"
BATCH = "/v1/convai/knowledge-base/rag-index"
SLOW_UPLOADS = FaultRule(method="POST", path=r"/knowledge-base/text$", times=None, latency=0.2)


def batches(kit: Kit) -> list[Any]:
    return [c for c in kit.backend.calls if c.method == "POST" and c.path == BATCH]


def singles(kit: Kit) -> list[Any]:
    return [
        c
        for c in kit.backend.calls
        if c.method == "POST" and c.path.endswith("/rag-index") and c.path != BATCH
    ]


def ids_of(call: Any) -> list[str]:
    return [str(i["document_id"]) for i in (call.request_json or {}).get("items", [])]


def write_docs(kit: Kit, n: int) -> None:
    for i in range(n):
        kit.write(f"d{i:03}.md", para(f"d{i}"))


def test_forty_new_documents_are_computed_and_polled_in_a_handful_of_batch_requests(
    kit: Kit,
) -> None:
    write_docs(kit, 40)
    r = kit.push()
    assert r.code == 0, r.stderr
    assert len(kit.managed_kb()) == 40
    assert singles(kit) == []  # no per-document compute or poll
    sent = batches(kit)
    assert 1 <= len(sent) <= 5, [len(ids_of(c)) for c in sent]  # was 40 computes + 80 polls
    assert all(len(ids_of(c)) <= 100 for c in sent)
    assert "index.batch_unavailable" not in r.stderr


@pytest.mark.parametrize("status", [404, 405])
def test_a_server_without_the_batch_endpoint_gets_per_document_calls_said_once(
    kit: Kit, status: int
) -> None:
    kit.backend.add_fault(no_batch_index(status))
    write_docs(kit, 5)
    r = kit.push()
    assert r.code == 0, r.stderr
    assert len(kit.managed_kb()) == 5
    assert [c.status for c in batches(kit)] == [status]  # tried once, then never again
    assert len({c.path for c in singles(kit)}) == 5  # each document computed on its own
    assert r.stderr.count("index.batch_unavailable") == 1


def test_a_batch_answer_that_names_none_of_the_documents_falls_back_to_one_at_a_time(
    kit: Kit,
) -> None:
    """Guess 31d (docs/emulator.md): the answer is keyed by document id. Should the real one be
    keyed otherwise, every document would wait out --index-wait: fall back instead, said once."""
    by_position = {"0": {"status": "success", "data": {"id": "x", "status": "succeeded"}}}
    kit.backend.add_fault(
        FaultRule(
            method="POST",
            path=r"^/v1/convai/knowledge-base/rag-index$",
            times=None,
            status=200,
            body=by_position,
        )
    )
    write_docs(kit, 5)
    r = kit.push()
    assert r.code == 0, r.stderr
    assert len(kit.managed_kb()) == 5
    assert len(batches(kit)) == 1  # tried once, then never again
    assert len({c.path for c in singles(kit)}) == 5
    assert r.stderr.count("index.batch_unreadable") == 1


def test_the_fallback_is_said_once_when_several_batches_were_refused_at_once(kit: Kit) -> None:
    kit.backend.set_plan(max_patch_entries=None)
    kit.backend.add_fault(no_batch_index(405))
    write_docs(kit, 120)  # two batch requests, sent side by side
    r = kit.push("--concurrency", "8")
    assert r.code == 0, r.stderr
    assert len(kit.managed_kb()) == 120
    assert 1 <= len(batches(kit)) <= 2
    assert r.stderr.count("index.batch_unavailable") == 1


def test_indexes_are_computed_and_polled_while_the_uploads_go_on(kit: Kit) -> None:
    kit.backend.add_fault(SLOW_UPLOADS)  # each upload lets 0.2 s pass on the test's clock
    write_docs(kit, 12)
    r = kit.push("--concurrency", "1")
    assert r.code == 0, r.stderr
    calls = kit.backend.calls
    creates = [i for i, c in enumerate(calls) if c.path.endswith("/knowledge-base/text")]
    computed: set[str] = set()
    polled_early = computed_early = False
    for c in calls[: creates[-1]]:  # everything sent before the last upload
        if c.method == "POST" and c.path == BATCH:
            ids = set(ids_of(c))
            computed_early = True
            polled_early = polled_early or bool(ids & computed)
            computed |= ids
    assert computed_early and polled_early
    first = [ids_of(c) for c in batches(kit)][0]
    uploaded = [str(calls[i].response_json["id"]) for i in creates]
    assert first == uploaded[: len(first)]  # the oldest uploads first


def test_the_quota_running_out_during_the_overlap_stops_further_uploads(kit: Kit) -> None:
    kit.backend.add_fault(SLOW_UPLOADS)
    size = len(para("d0").encode())

    def squeeze_after_preflight(backend: Backend, call: Any) -> None:
        if call.method == "GET" and call.path == BATCH:
            backend.set_quota(backend.used_bytes() + 2 * size + 10)  # room for two

    kit.backend.after_request.append(squeeze_after_preflight)
    write_docs(kit, 20)
    r = kit.push("--concurrency", "1")
    assert r.code == ExitCode.PARTIAL
    assert "quota.exceeded" in r.stderr and "status=not_uploaded" in r.stderr
    creates = [c for c in kit.backend.calls if c.path.endswith("/knowledge-base/text")]
    assert len(creates) < 8  # stopped at the first batch that said rag_limit_exceeded


# ------------------------------------------------------------------ pacing, on the test's clock


class RecordingClock(FakeClock):
    def __init__(self) -> None:
        super().__init__()
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        super().sleep(seconds)


def _one_doc(backend: Backend) -> str:
    with backend.lock:
        return backend.create_doc("kb-sync:a.md#0", para("a"), "markdown").id


def _result(doc_id: str) -> DocResult:
    return DocResult(item=Item("create", "a.md", "kb-sync:a.md#0"), doc_id=doc_id)


def test_polls_follow_the_servers_progress_and_stay_within_2s_once_close() -> None:
    clock = RecordingClock()
    backend = Backend(api_key=CANARY_KEY, clock=clock, index_seconds=20.0)
    doc = _one_doc(backend)
    with emulate(backend), ThreadPoolExecutor(2) as pool:
        indexer = Indexer(Client(BASE, CANARY_KEY, clock=clock), clock, MODEL, IndexOptions())
        r = _result(doc)
        indexer.uploaded(r)
        indexer.wait([r], pool)
    assert r.status == "succeeded"
    answers = [(c.at, c.response_json[doc]["data"]) for c in backend.calls]
    started, done_seen = answers[0][0], answers[-1][0]
    assert 0 <= done_seen - (started + 20.0) <= 2.0  # seen done at most 2 s after it was
    late = [at for at, data in answers if data["progress_percentage"] >= 50]
    assert all(b - a <= 2.0 for a, b in zip(late, late[1:], strict=False))
    assert len(backend.calls) <= 10  # 1 compute + a few polls
    assert max(clock.sleeps) <= 10.0


@responses.activate
def test_without_progress_the_polls_back_off_up_to_poll_max() -> None:
    """A server that says nothing of progress is paced as before: x1.5 up to 10 s."""
    data = {"id": "i", "model": MODEL, "status": "processing"}
    responses.post(BASE + BATCH, json={"d1": {"status": "success", "data": data}})
    clock = RecordingClock()
    with ThreadPoolExecutor(2) as pool:
        indexer = Indexer(Client(BASE, CANARY_KEY, clock=clock), clock, MODEL, IndexOptions(60))
        r = _result("d1")
        indexer.uploaded(r)
        indexer.wait([r], pool)
    assert "after 60s" in str(r.error)
    assert clock.sleeps[:4] == [0.5, 0.75, 1.125, 1.6875]
    assert max(clock.sleeps) == 10.0


def test_pace_estimates_from_the_progress_rate_and_backs_off_when_it_stalls() -> None:
    opt = PaceOptions()
    pace = Pace()
    assert pace.next_wait(0.0, 0.0, opt) == 0.5  # created: nothing known yet
    assert pace.next_wait(0.5, 0.0, opt) == 0.75  # still 0: back off
    assert pace.next_wait(2.0, 10.0, opt) == 10.0  # 5 %/s, 18 s left: at most poll_max
    assert pace.next_wait(3.0, 40.0, opt) == pytest.approx(2.2)  # 30 %/s: 2 s left, +10%
    assert pace.next_wait(4.0, 60.0, opt) == 2.0  # past 50%: at most 2 s apart
    assert pace.next_wait(5.0, 99.9, opt) == 0.25  # at least poll_min
    assert pace.next_wait(6.0, 99.9, opt) == 0.375  # stalled (a stuck index): back off


# ------------------------------------------------------------------ batch answers, item by item


def _answer(**items: Any) -> dict[str, Any]:
    return dict(items)


def _success(status: str, progress: float = 0.0) -> dict[str, Any]:
    data = {"id": "i", "model": MODEL, "status": status, "progress_percentage": progress}
    return {"status": "success", "data": data}


def _failure(code: int, status: str) -> dict[str, Any]:
    return {"status": "failure", "error_code": code, "error_status": status, "error_message": "m"}


@responses.activate
def test_per_item_failures_a_refusal_is_an_error_a_5xx_is_asked_again_a_404_vanished() -> None:
    first = {"d1": _failure(422, "invalid"), "d2": _failure(503, "busy"), "d3": _failure(404, "nf")}
    responses.post(BASE + BATCH, json=first)
    responses.post(BASE + BATCH, json={"d2": _success("succeeded", 100.0)})
    clock = RecordingClock()
    results = [_result(d) for d in ("d1", "d2", "d3")]
    with ThreadPoolExecutor(2) as pool:
        indexer = Indexer(Client(BASE, CANARY_KEY, clock=clock), clock, MODEL, IndexOptions(180))
        for r in results:
            indexer.uploaded(r)
        indexer.wait(results, pool)
    assert [r.status for r in results] == ["error", "succeeded", "upload_failed"]
    assert "invalid" in str(results[0].error) and results[2].error == "document vanished"
    assert len(responses.calls) == 2  # the refused one was not polled to the deadline
    second = json.loads(responses.calls[1].request.body or b"{}")
    assert [i["document_id"] for i in second["items"]] == ["d2"]
    assert sum(clock.sleeps) < 5


@responses.activate
def test_a_document_missing_from_the_answer_is_asked_about_again() -> None:
    responses.post(BASE + BATCH, json={})
    responses.post(BASE + BATCH, json={"d1": _success("succeeded", 100.0)})
    clock = RecordingClock()
    with ThreadPoolExecutor(2) as pool:
        indexer = Indexer(Client(BASE, CANARY_KEY, clock=clock), clock, MODEL, IndexOptions(30))
        r = _result("d1")
        indexer.uploaded(r)
        indexer.wait([r], pool)
    assert r.status == "succeeded" and r.error is None and len(responses.calls) == 2
