"""Random operation sequences keep the emulator's invariants (checked in an after_request hook)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.clock import FakeClock
from sync.emulator import Backend, Call, emulate
from tests.emulator.emu_helpers import BASE, LONG, MODEL, Api

pytestmark = pytest.mark.emulator_only

OPS = st.lists(
    st.tuples(
        st.sampled_from(
            ["create", "small", "index", "attach", "detach", "delete", "force", "tick"]
        ),
        st.integers(0, 5),
    ),
    max_size=25,
)


def invariants(backend: Backend, call: Call) -> None:
    for agent_id in backend.agents:
        for loc in backend.agent_kb(agent_id):
            assert loc["id"] in backend.docs, "agent references a deleted doc"
    assert all(doc_id in backend.docs for doc_id, _m in backend.indexes)
    assert backend.used_bytes() <= backend.quota_bytes
    if call.path.endswith("/knowledge-base/text") and call.status == 200:
        assert call.response_json["id"] in backend.docs


@settings(max_examples=40, deadline=None)
@given(ops=OPS)
def test_random_operations_keep_invariants(ops: list[tuple[str, int]]) -> None:
    clock = FakeClock()
    backend = Backend(clock=clock, quota_bytes=len(LONG) * 3, seed=3)
    backend.after_request.append(invariants)
    agent = backend.seed_agent()
    docs: list[str] = []
    with emulate(backend):
        api = Api(BASE)

        def pick(i: int) -> str | None:
            return docs[i % len(docs)] if docs else None

        for op, i in ops:
            doc = pick(i)
            if op == "create":
                docs.append(api.create())
            elif op == "small":
                docs.append(api.create(text="tiny"))
            elif op == "tick":
                clock.advance(i)
            elif doc is None:
                continue
            elif op == "index":
                api("POST", f"/knowledge-base/{doc}/rag-index", json={"model": MODEL})
            elif op in ("attach", "detach"):
                kb: list[dict[str, Any]] = [
                    loc for loc in backend.agent_kb(agent) if loc["id"] != doc
                ]
                if op == "attach":
                    kb.append({"type": "text", "name": "d", "id": doc, "usage_mode": "auto"})
                r = api.set_kb(agent, kb)
                assert r.status_code in (200, 422)
            elif op in ("delete", "force"):
                params = {"force": "true"} if op == "force" else {}
                r = api("DELETE", f"/knowledge-base/{doc}", params=params)
                assert r.status_code in (200, 400, 404)
                if r.status_code == 200:
                    docs.remove(doc)
