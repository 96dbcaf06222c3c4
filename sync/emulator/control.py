"""Test-only control endpoints under ``/_emulator/`` (no API key, no faults, not logged).

| method, path | body | answer |
|---|---|---|
| POST /_emulator/reset | | ``{}`` |
| POST /_emulator/agents | seed_agent options | the agent (GET /agents/{id} shape) |
| POST /_emulator/documents | seed_document options | ``{"id", "name"}`` |
| POST /_emulator/attach | ``{agent_id, doc_id, usage_mode?}`` | ``{}`` |
| POST /_emulator/faults | FaultRule fields | ``{"faults": n}`` |
| DELETE /_emulator/faults | | ``{}`` |
| GET /_emulator/calls | | ``{"calls": [...]}`` |
| DELETE /_emulator/calls | | ``{}`` |
| POST /_emulator/clock/advance | ``{"seconds"}`` | ``{"now"}`` |
| POST /_emulator/index-behaviour | ``{match, behaviour, times?}`` | ``{}`` |
| POST /_emulator/linger | ``{"times"}`` | ``{}`` |
| POST /_emulator/quota | ``{"total_max_bytes"}`` | ``{}`` |
| GET /_emulator/state | | :meth:`Backend.state` |
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sync.emulator.faults import FaultRule

if TYPE_CHECKING:
    from sync.emulator.backend import Backend, Response

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
DOC_OPTIONS = {"name", "text", "content_format", "indexed_models", "attach_to", "usage_mode"}


class ControlError(Exception):
    pass


def _options(data: dict[str, Any], allowed: set[str]) -> dict[str, Any]:
    unknown = set(data) - allowed
    if unknown:
        raise ControlError(f"unknown options: {sorted(unknown)}")
    return data


def handle_control(
    backend: Backend, method: str, path: str, query: dict[str, list[str]], body: bytes
) -> Response:
    from sync.emulator.backend import Response

    route = path[len("/_emulator") :].rstrip("/")
    try:
        data: Any = json.loads(body.decode("utf-8")) if body.strip() else {}
        if not isinstance(data, dict):
            raise ControlError("the body must be a JSON object")
        result = _dispatch(backend, method, route, data)
    except ControlError as exc:
        return Response.of_json(400, {"error": str(exc)})
    except (ValueError, TypeError, KeyError) as exc:
        return Response.of_json(400, {"error": f"{type(exc).__name__}: {exc}"})
    if result is None:
        return Response.of_json(404, {"error": f"no control endpoint {method} {path}"})
    return Response.of_json(200, result)


def _dispatch(backend: Backend, method: str, route: str, data: dict[str, Any]) -> Any:
    key = (method, route)
    if key == ("POST", "/reset"):
        backend.reset()
        return {}
    if key == ("POST", "/agents"):
        opts = _options(data, AGENT_OPTIONS)
        agent_id = backend.seed_agent(**opts)
        return backend.agent_json(agent_id)
    if key == ("POST", "/documents"):
        opts = _options(data, DOC_OPTIONS)
        if "name" not in opts or "text" not in opts:
            raise ControlError("name and text are required")
        doc_id = backend.seed_document(**opts)
        return {"id": doc_id, "name": backend.docs[doc_id].name}
    if key == ("POST", "/attach"):
        opts = _options(data, {"agent_id", "doc_id", "usage_mode"})
        backend.attach(**opts)
        return {}
    if key == ("POST", "/faults"):
        backend.add_fault(FaultRule.from_dict(data))
        return {"faults": len(backend.faults)}
    if key == ("DELETE", "/faults"):
        backend.clear_faults()
        return {}
    if key == ("GET", "/calls"):
        with backend.lock:
            return {"calls": [c.to_dict() for c in backend.calls]}
    if key == ("DELETE", "/calls"):
        backend.clear_calls()
        return {}
    if key == ("POST", "/clock/advance"):
        return {"now": backend.advance(float(data.get("seconds", 0)))}
    if key == ("POST", "/index-behaviour"):
        opts = _options(data, {"match", "behaviour", "times"})
        backend.set_index_behaviour(**opts)
        return {}
    if key == ("POST", "/linger"):
        backend.linger(int(data.get("times", 0)))
        return {}
    if key == ("POST", "/quota"):
        backend.set_quota(int(data["total_max_bytes"]))
        return {}
    if key == ("GET", "/state"):
        return backend.state()
    return None
