"""The API handlers and views of agent testing [spec], and their control endpoints.

``POST /agent-testing/create``, ``GET /agent-testing``, ``GET``/``DELETE
/agent-testing/{test_id}``, ``POST /agents/{agent_id}/run-tests``, ``GET
/test-invocations/{id}``: request checks (422 in the FastAPI shape), the model in
:mod:`sync.emulator.agent_tests`, the spec's JSON shapes. Only ``llm`` (response) tests are
emulated; a ``tool`` or ``simulation`` test is a 422 [emulator limit].
"""

from __future__ import annotations

from typing import Any

import sync.emulator.exceptions as exc
import sync.emulator.validation as check
from sync.emulator.agent_tests import AgentTest, AgentTestRun, Invocation, agent_testing
from sync.emulator.agents import OWNER
from sync.emulator.exceptions import ValidationFailed
from sync.emulator.models import Workspace
from sync.emulator.wire import Request, Response

MAX_HISTORY = 200  # [spec] chat_history maxItems


def _ok(data: Any) -> Response:
    return Response.of_json(200, data)


# --------------------------------------------------------------------------- checks


def _history_errors(history: Any) -> list[exc.ErrorItem]:
    loc: exc.Loc = ["body", "chat_history"]
    if history is None:
        return []
    if not isinstance(history, list):
        return [exc.type_error(loc, "list_type", history)]
    errors = []
    for i, turn in enumerate(history[:MAX_HISTORY]):
        if not isinstance(turn, dict):
            errors.append(exc.type_error([*loc, i], "model_attributes_type", turn))
            continue
        if turn.get("role") not in ("user", "agent"):
            errors.append(exc.enum_error([*loc, i, "role"], ("user", "agent"), turn.get("role")))
        if not isinstance(turn.get("time_in_call_secs"), int):
            errors.append(exc.missing([*loc, i, "time_in_call_secs"], turn))
        if turn.get("message") is not None and not isinstance(turn.get("message"), str):
            errors.append(exc.type_error([*loc, i, "message"], "string_type", turn["message"]))
    if len(history) > MAX_HISTORY:
        errors.append(exc.list_length(loc, history, 0, MAX_HISTORY))
    return errors


def create_body(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(name, body)`` of a create request: an ``llm`` response test."""
    errors: list[exc.ErrorItem] = []
    name = data.get("name")
    if not isinstance(name, str):
        errors.append(
            exc.missing(["body", "name"], data)
            if name is None
            else exc.type_error(["body", "name"], "string_type", name)
        )
    kind = data.get("type", "llm")
    if kind != "llm":
        errors.append(exc.value_error(["body", "type"], "the emulator has llm tests only", kind))
    if not isinstance(data.get("success_condition", ""), str):
        errors.append(
            exc.type_error(["body", "success_condition"], "string_type", data["success_condition"])
        )
    errors += _history_errors(data.get("chat_history"))
    if errors:
        raise ValidationFailed(*errors)
    body = {
        "type": "llm",
        "chat_history": list(data.get("chat_history") or []),
        "success_condition": data.get("success_condition", ""),
        "success_examples": list(data.get("success_examples") or []),
        "failure_examples": list(data.get("failure_examples") or []),
        "dynamic_variables": dict(data.get("dynamic_variables") or {}),
    }
    return str(name), body


def run_body(data: dict[str, Any]) -> tuple[list[str], str | None]:
    tests = data.get("tests")
    loc: exc.Loc = ["body", "tests"]
    if tests is None:
        raise ValidationFailed(exc.missing(loc, data))
    if not isinstance(tests, list):
        raise ValidationFailed(exc.type_error(loc, "list_type", tests))
    errors = [
        exc.missing([*loc, i, "test_id"], t)
        for i, t in enumerate(tests)
        if not isinstance(t, dict) or not isinstance(t.get("test_id"), str)
    ]
    if not 1 <= len(tests) <= 5000:
        errors.append(exc.list_length(loc, tests, 1, 5000))
    branch = data.get("branch_id")
    if branch is not None and not isinstance(branch, str):
        errors.append(exc.type_error(["body", "branch_id"], "string_type", branch))
    if errors:
        raise ValidationFailed(*errors)
    return [str(t["test_id"]) for t in tests], branch


# --------------------------------------------------------------------------- views


def summary_view(t: AgentTest) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "access_info": dict(OWNER),
        "created_at_unix_secs": int(t.created_at),
        "last_updated_at_unix_secs": int(t.updated_at),
        "type": "llm",
        "entity_type": "test",
        "folder_parent_id": None,
        "folder_path": [],
    }


def run_view(ws: Workspace, run: AgentTestRun) -> dict[str, Any]:
    status = agent_testing(ws).status(run)
    done = status != "pending"
    return {
        "test_run_id": run.id,
        "test_invocation_id": run.invocation_id,
        "agent_id": run.agent_id,
        "branch_id": run.branch_id,
        "status": status,
        "test_id": run.test.id,
        "test_name": run.test.name,
        "agent_responses": (
            [{"role": "agent", "message": run.answer, "time_in_call_secs": 0}] if done else None
        ),
        "condition_result": (
            {"result": run.verdict, "rationale": {"messages": [], "summary": run.rationale}}
            if done
            else None
        ),
        "last_updated_at_unix": int(run.started + (agent_testing(ws).run_seconds if done else 0)),
    }


def invocation_view(ws: Workspace, inv: Invocation) -> dict[str, Any]:
    return {
        "id": inv.id,
        "agent_id": inv.agent_id,
        "branch_id": inv.branch_id,
        "created_at": int(inv.created_at),
        "repeat_count": 1,
        "test_runs": [run_view(ws, r) for r in inv.runs],
    }


# --------------------------------------------------------------------------- handlers


def create_test(ws: Workspace, req: Request) -> Response:
    name, body = create_body(check.object_body(req))
    return _ok({"id": agent_testing(ws).create(name, body).id})


def get_test(ws: Workspace, req: Request) -> Response:
    t = agent_testing(ws).test(req.params["test_id"])
    return _ok({"id": t.id, "name": t.name, **t.body})


def delete_test(ws: Workspace, req: Request) -> Response:
    agent_testing(ws).delete(req.params["test_id"])
    return _ok({})


def list_tests(ws: Workspace, req: Request) -> Response:
    """Oldest first [guess]; ``search``: a case-insensitive substring of the name [guess]."""
    page_size = check.int_param(req, "page_size", 30, 1, 100)
    cursor = req.one("cursor")
    after = int(check.decode_cursor(cursor)[0]) if cursor else 0
    search = (req.one("search") or "").casefold()
    tests = sorted(agent_testing(ws).tests.values(), key=lambda t: t.seq)
    hits = [t for t in tests if t.seq > after and search in t.name.casefold()]
    page = hits[:page_size]
    more = len(hits) > page_size
    return _ok(
        {
            "tests": [summary_view(t) for t in page],
            "next_cursor": check.encode_cursor([page[-1].seq, page[-1].id]) if more else None,
            "has_more": more,
        }
    )


def run_tests(ws: Workspace, req: Request) -> Response:
    agent_id = req.params["agent_id"]
    ws.agent(agent_id)  # 404 first
    test_ids, branch_id = run_body(check.object_body(req))
    return _ok(invocation_view(ws, agent_testing(ws).run(agent_id, branch_id, test_ids)))


def get_invocation(ws: Workspace, req: Request) -> Response:
    return _ok(invocation_view(ws, agent_testing(ws).invocation(req.params["invocation_id"])))


# --------------------------------------------------------------------------- control


def control_behaviour(backend: Any, req: Request) -> Any:
    """``POST /_emulator/agent-tests/behaviour {match, behaviour, times?}``."""
    with backend.lock:
        times = req.data.get("times")
        agent_testing(backend).set_behaviour(
            str(req.data["match"]),
            str(req.data["behaviour"]),
            None if times is None else int(times),
        )
    return {}


def control_settings(backend: Any, req: Request) -> Any:
    """``POST /_emulator/agent-tests/settings {run_seconds}``."""
    with backend.lock:
        agent_testing(backend).run_seconds = float(req.data["run_seconds"])
    return {}


def control_state(backend: Any, req: Request) -> Any:
    """``GET /_emulator/agent-tests``: tests, invocations (with their runs), behaviours."""
    with backend.lock:
        return agent_testing(backend).state()
