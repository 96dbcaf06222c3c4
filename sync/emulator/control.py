"""The test-only control plane under ``/_emulator/`` (no API key, never faulted, not logged).

Each handler is ``handler(backend, request) -> result`` on the seeding, fault and inspection
methods of :class:`~sync.emulator.backend.Backend` (what it needs is :class:`Controlled`),
routed by :mod:`sync.emulator.urls`; the result is answered as JSON with 200. The request's
JSON object body is parsed before routing (:func:`parse_body`); a
:class:`~sync.emulator.exceptions.ControlError`, ``ValueError``, ``TypeError`` or ``KeyError``
is a 400 ``{"error": ...}`` (:func:`error_response`). The table is in ``docs/emulator.md``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, Protocol

from sync.emulator.exceptions import ControlError
from sync.emulator.faults import FaultRule
from sync.emulator.models import Doc
from sync.emulator.wire import Call, Request, Response

AGENT_OPTIONS = {
    "agent_id",
    "name",
    "rag_enabled",
    "embedding_model",
    "knowledge_base",
    "prompt",
    "first_message",
    "language",
}
DOC_OPTIONS = {
    "name",
    "text",
    "content_format",
    "indexed_models",
    "attach_to",
    "usage_mode",
    "parent_folder_id",
}
ATTACH_OPTIONS = {"agent_id", "doc_id", "usage_mode", "branch_id"}
PLAN_OPTIONS = {"max_chars", "max_patch_entries", "total_max_bytes"}
STALE_OPTIONS = {"match", "text"}
FOLDER_OPTIONS = {"name", "parent_folder_id"}
BRANCH_OPTIONS = {"agent_id", "name", "description"}
BEHAVIOUR_OPTIONS = {"match", "behaviour", "times"}


class Controlled(Protocol):
    """What the control plane drives (a :class:`~sync.emulator.backend.Backend`)."""

    calls: list[Call]
    faults: list[FaultRule]
    docs: dict[str, Doc]

    @property
    def lock(self) -> threading.RLock: ...
    def reset(self) -> None: ...
    def agent_json(self, agent_id: str) -> dict[str, Any]: ...

    # called with the options of a JSON body: their checks are the methods' own
    @property
    def seed_agent(self) -> Callable[..., str]: ...
    @property
    def seed_document(self) -> Callable[..., str]: ...
    @property
    def attach(self) -> Callable[..., None]: ...
    @property
    def set_plan(self) -> Callable[..., None]: ...
    @property
    def seed_folder(self) -> Callable[..., str]: ...
    @property
    def seed_branch(self) -> Callable[..., str]: ...

    def serve_stale(self, match: str, text: str | None) -> None: ...

    def add_fault(self, rule: FaultRule) -> FaultRule: ...
    def clear_faults(self) -> None: ...
    def set_concurrency_limit(self, limit: int | None) -> None: ...
    def clear_calls(self) -> None: ...
    def advance(self, seconds: float) -> float: ...
    def set_index_behaviour(self, match: str, behaviour: str, times: int | None = ...) -> None: ...
    def linger(self, times: int) -> None: ...
    def set_quota(self, total_max_bytes: int) -> None: ...
    def state(self) -> dict[str, Any]: ...


def parse_body(body: bytes) -> dict[str, Any]:
    data: Any = json.loads(body.decode("utf-8")) if body.strip() else {}
    if not isinstance(data, dict):
        raise ControlError("the body must be a JSON object")
    return data


def error_response(err: Exception) -> Response:
    message = str(err) if isinstance(err, ControlError) else f"{type(err).__name__}: {err}"
    return Response.of_json(400, {"error": message})


def not_found(method: str, path: str) -> Response:
    return Response.of_json(404, {"error": f"no control endpoint {method} {path}"})


def _options(data: dict[str, Any], allowed: set[str]) -> dict[str, Any]:
    unknown = set(data) - allowed
    if unknown:
        raise ControlError(f"unknown options: {sorted(unknown)}")
    return data


def reset(backend: Controlled, req: Request) -> Any:
    backend.reset()
    return {}


def seed_agent(backend: Controlled, req: Request) -> Any:
    agent_id = backend.seed_agent(**_options(req.data, AGENT_OPTIONS))
    return backend.agent_json(agent_id)


def seed_document(backend: Controlled, req: Request) -> Any:
    opts = _options(req.data, DOC_OPTIONS)
    if "name" not in opts or "text" not in opts:
        raise ControlError("name and text are required")
    for key in ("attach_to", "indexed_models"):
        if key in opts and not isinstance(opts[key], list):
            raise ControlError(f'{key} must be a list of ids (e.g. ["agent_..."])')
    doc_id = backend.seed_document(**opts)
    return {"id": doc_id, "name": backend.docs[doc_id].name}


def attach(backend: Controlled, req: Request) -> Any:
    backend.attach(**_options(req.data, ATTACH_OPTIONS))
    return {}


def add_fault(backend: Controlled, req: Request) -> Any:
    backend.add_fault(FaultRule.from_dict(req.data))
    return {"faults": len(backend.faults)}


def clear_faults(backend: Controlled, req: Request) -> Any:
    backend.clear_faults()
    return {}


def concurrency_limit(backend: Controlled, req: Request) -> Any:
    """``{"limit": n}``: at most n API requests in flight, more answered 429; ``null``: none."""
    opts = _options(req.data, {"limit"})
    if "limit" not in opts:
        raise ControlError("limit is required (a whole number >= 1, or null for no limit)")
    limit = opts["limit"]
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
        raise ControlError("limit must be a whole number >= 1, or null for no limit")
    backend.set_concurrency_limit(limit)
    return {"limit": limit}


def calls(backend: Controlled, req: Request) -> Any:
    with backend.lock:
        return {"calls": [c.to_dict() for c in backend.calls]}


def clear_calls(backend: Controlled, req: Request) -> Any:
    backend.clear_calls()
    return {}


def advance(backend: Controlled, req: Request) -> Any:
    return {"now": backend.advance(float(req.data.get("seconds", 0)))}


def index_behaviour(backend: Controlled, req: Request) -> Any:
    backend.set_index_behaviour(**_options(req.data, BEHAVIOUR_OPTIONS))
    return {}


def linger(backend: Controlled, req: Request) -> Any:
    backend.linger(int(req.data.get("times", 0)))
    return {}


def quota(backend: Controlled, req: Request) -> Any:
    backend.set_quota(int(req.data["total_max_bytes"]))
    return {}


def plan(backend: Controlled, req: Request) -> Any:
    backend.set_plan(**_options(req.data, PLAN_OPTIONS))
    return {}


def stale_retrieval(backend: Controlled, req: Request) -> Any:
    opts = _options(req.data, STALE_OPTIONS)
    if not isinstance(opts.get("match"), str) or not opts["match"]:
        raise ControlError("match (a doc id or name prefix) is required")
    backend.serve_stale(opts["match"], opts.get("text"))
    return {}


def seed_folder(backend: Controlled, req: Request) -> Any:
    return {"id": backend.seed_folder(**_options(req.data, FOLDER_OPTIONS))}


def seed_branch(backend: Controlled, req: Request) -> Any:
    return {"id": backend.seed_branch(**_options(req.data, BRANCH_OPTIONS))}


def state(backend: Controlled, req: Request) -> Any:
    return backend.state()
