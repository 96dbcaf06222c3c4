"""The emulator's agent testing [spec] and its stand-in judge [guess]: create, get, list
(paging, search), delete, run-tests and the invocation's lifecycle on the clock, the error and
never-finishing behaviours, 404s and 422s, the control plane over HTTP; every exchange
checked against the vendored spec."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from sync.clock import FakeClock
from sync.emulator import Backend, serve
from sync.emulator.agent_tests import agent_testing
from tests.contract.spec import validate_call
from tests.emulator.emu_helpers import KEY, Api

FAQ = "\n\n".join(
    [
        "Аренда офиса во втором квартале: 1 200 000 рублей.",
        "Парковка у офиса бесплатная для сотрудников и гостей.",
    ]
    * 6
)


def _condition(*facts: str) -> str:
    return "The answer states " + ", ".join(f'"{f}"' for f in facts) + "."


def _create(api: Api, name: str, ask: str, *facts: str) -> str:
    body = {
        "name": name,
        "type": "llm",
        "chat_history": [{"role": "user", "message": ask, "time_in_call_secs": 0}],
        "success_condition": _condition(*facts),
        "success_examples": [{"response": " ".join(facts), "type": "success"}],
        "failure_examples": [{"response": "I don't know.", "type": "failure"}],
    }
    answer: dict[str, Any] = api.json("POST", "/agent-testing/create", json=body)
    return str(answer["id"])


def _agent(backend: Backend) -> str:
    agent = backend.seed_agent()
    backend.seed_document("FAQ", FAQ, attach_to=[agent])
    return agent


def _checked(backend: Backend) -> None:
    for call in backend.calls:
        validate_call(call)


def test_create_get_list_delete(api: Api, backend: Backend) -> None:
    ids = [
        _create(api, f"kb-sync:question#{i:016d} q{i}", "аренда?", "1 200 000") for i in range(3)
    ]
    got = api.json("GET", f"/agent-testing/{ids[0]}")
    assert got["id"] == ids[0] and got["type"] == "llm" and got["chat_history"][0]["role"] == "user"
    page = api.json("GET", "/agent-testing", params={"page_size": 2, "search": "KB-SYNC:question#"})
    assert [t["id"] for t in page["tests"]] == ids[:2] and page["has_more"]
    rest = api.json("GET", "/agent-testing", params={"page_size": 2, "cursor": page["next_cursor"]})
    assert [t["id"] for t in rest["tests"]] == ids[2:] and not rest["has_more"]
    assert api.json("GET", "/agent-testing", params={"search": "nothing"})["tests"] == []
    assert api.json("DELETE", f"/agent-testing/{ids[1]}") == {}
    assert api("GET", f"/agent-testing/{ids[1]}").status_code == 404
    assert api("DELETE", f"/agent-testing/{ids[1]}").status_code == 404
    _checked(backend)


def test_bad_requests_are_422(api: Api, backend: Backend) -> None:
    assert api("POST", "/agent-testing/create", json={"type": "llm"}).status_code == 422
    tool = {"name": "t", "type": "tool"}
    assert api("POST", "/agent-testing/create", json=tool).status_code == 422
    agent = _agent(backend)
    assert api("POST", f"/agents/{agent}/run-tests", json={"tests": []}).status_code == 422
    assert api("POST", f"/agents/{agent}/run-tests", json={"tests": [{}]}).status_code == 422
    _checked(backend)


def test_a_run_is_pending_then_judged_on_the_clock(
    api: Api, backend: Backend, clock: FakeClock
) -> None:
    agent = _agent(backend)
    good = _create(api, "good", "Аренда офиса во втором квартале?", "1 200 000")
    bad = _create(api, "bad", "Аренда офиса во втором квартале?", "1 300 000")
    inv = api.json(
        "POST", f"/agents/{agent}/run-tests", json={"tests": [{"test_id": good}, {"test_id": bad}]}
    )
    assert [r["status"] for r in inv["test_runs"]] == ["pending", "pending"]
    clock.advance(1.0)
    done = api.json("GET", f"/test-invocations/{inv['id']}")
    runs = {r["test_id"]: r for r in done["test_runs"]}
    assert runs[good]["status"] == "passed" and runs[bad]["status"] == "failed"
    assert runs[bad]["condition_result"]["result"] == "failure"
    assert "1 200 000" in runs[good]["agent_responses"][0]["message"]  # the top chunk
    assert "Парковка" not in runs[good]["agent_responses"][0]["message"]
    _checked(backend)


def test_error_and_never_behaviours(api: Api, backend: Backend, clock: FakeClock) -> None:
    agent = _agent(backend)
    erring = _create(api, "err-1", "Аренда?", "1 200 000")
    stuck = _create(api, "stuck-1", "Аренда?", "1 200 000")
    with backend.lock:
        agent_testing(backend).set_behaviour("err-", "error")
        agent_testing(backend).set_behaviour(stuck, "never")
    body = {"tests": [{"test_id": erring}, {"test_id": stuck}]}
    inv = api.json("POST", f"/agents/{agent}/run-tests", json=body)
    clock.advance(3600)
    runs = {r["test_id"]: r for r in api.json("GET", f"/test-invocations/{inv['id']}")["test_runs"]}
    assert runs[erring]["status"] == "failed"
    assert runs[erring]["condition_result"]["result"] == "unknown"
    assert runs[stuck]["status"] == "pending"
    _checked(backend)


def test_unknown_agent_test_and_invocation_are_404(api: Api, backend: Backend) -> None:
    agent = _agent(backend)
    test = _create(api, "t", "?", "x")
    assert (
        api("POST", "/agents/agent_nope/run-tests", json={"tests": [{"test_id": test}]}).status_code
        == 404
    )
    unknown = {"tests": [{"test_id": "nope"}]}
    assert api("POST", f"/agents/{agent}/run-tests", json=unknown).status_code == 404
    assert api("GET", "/test-invocations/nope").status_code == 404
    _checked(backend)


def test_reset_forgets_the_tests(api: Api, backend: Backend) -> None:
    _create(api, "t", "?", "x")
    backend.reset()
    assert api.json("GET", "/agent-testing")["tests"] == []


def test_control_plane_over_http() -> None:
    backend = Backend(api_key=KEY, clock=FakeClock())
    agent = _agent(backend)
    with serve(backend) as server:
        api = Api(server.url)
        test = _create(api, "ctl", "Аренда офиса?", "1 200 000")
        control = server.url + "/_emulator/agent-tests"
        assert requests.post(control + "/settings", json={"run_seconds": 0}, timeout=10).ok
        bad = requests.post(
            control + "/behaviour", json={"match": "x", "behaviour": "odd"}, timeout=10
        )
        assert bad.status_code == 400
        ok = requests.post(
            control + "/behaviour", json={"match": "ctl", "behaviour": "never"}, timeout=10
        )
        assert ok.ok
        inv = api.json("POST", f"/agents/{agent}/run-tests", json={"tests": [{"test_id": test}]})
        assert inv["test_runs"][0]["status"] == "pending"
        state = requests.get(control, timeout=10).json()
        assert state["behaviours"] == [["ctl", "never", None]] and state["run_seconds"] == 0
    _checked(backend)


def test_the_official_python_sdk_parses_the_agent_testing_answers(
    api: Api, backend: Backend, clock: FakeClock
) -> None:
    types = pytest.importorskip("elevenlabs.types")
    agent = _agent(backend)
    test = _create(api, "sdk", "Аренда офиса?", "1 200 000")
    types.CreateAgentTestResponseModel.model_validate({"id": test})
    types.GetResponseUnitTestResponseModel.model_validate(api.json("GET", f"/agent-testing/{test}"))
    types.GetTestsPageResponseModel.model_validate(api.json("GET", "/agent-testing"))
    inv = api.json("POST", f"/agents/{agent}/run-tests", json={"tests": [{"test_id": test}]})
    types.GetTestSuiteInvocationResponseModel.model_validate(inv)
    clock.advance(1)
    done = types.GetTestSuiteInvocationResponseModel.model_validate(
        api.json("GET", f"/test-invocations/{inv['id']}")
    )
    assert done.test_runs[0].status == "passed"
    assert done.test_runs[0].condition_result.result == "success"
