"""The emulator's domain errors and how each becomes an HTTP answer.

An :class:`EmulatorError` carries the status and the ``detail`` of the ElevenLabs error
body ``{"detail": ...}``; ``detail.request_id: None`` is filled with the request's id. The
422 builders below word validation errors as pydantic v2 / FastAPI do.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from sync.emulator.wire import Response

Loc = list[str | int]
ErrorItem = dict[str, Any]


class EmulatorError(Exception):
    """Raised by the model, validation or routing; :meth:`response` is the HTTP answer."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(status, detail)
        self.status = status
        self.detail = detail

    def response(self, request_id: str) -> Response:
        payload = {"detail": copy.deepcopy(self.detail)}
        fill_request_id(payload, request_id)
        return Response.of_json(self.status, payload)


def detail(status: str, message: str, code: str | None = None) -> dict[str, Any]:
    """An ElevenLabs error object; one with a ``code`` also gets the request's id."""
    body: dict[str, Any] = {"status": status, "message": message}
    if code is not None:
        body["code"] = code
        body["request_id"] = None  # filled with the request's id
    return body


def fill_request_id(payload: Any, request_id: str) -> None:
    if isinstance(payload, dict):
        inner = payload.get("detail")
        if isinstance(inner, dict) and "request_id" in inner and inner["request_id"] is None:
            inner["request_id"] = request_id


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# --------------------------------------------------------------------------- routing, auth


class RouteNotFound(EmulatorError):
    def __init__(self) -> None:
        super().__init__(404, "Not Found")


class MethodNotAllowed(EmulatorError):
    def __init__(self) -> None:
        super().__init__(405, "Method Not Allowed")


class NeedsAuthorization(EmulatorError):
    def __init__(self) -> None:
        message = "Neither authorization header nor xi-api-key received, please provide one."
        super().__init__(401, detail("needs_authorization", message))


class InvalidApiKey(EmulatorError):
    def __init__(self) -> None:
        super().__init__(401, detail("invalid_api_key", "Invalid API key"))


# --------------------------------------------------------------------------- the domain


class DocumentNotFound(EmulatorError):
    def __init__(self, doc_id: str) -> None:
        message = f"Knowledge base documentation with id {doc_id} not found."
        super().__init__(404, detail("knowledge_base_documentation_not_found", message))


class AgentNotFound(EmulatorError):
    def __init__(self, agent_id: str) -> None:
        super().__init__(404, detail("agent_not_found", f"Agent with id {agent_id} not found."))


class BranchNotFound(EmulatorError):
    """[guess] the wording; a 404 like the agent's own."""

    def __init__(self, branch_id: str) -> None:
        message = f"Branch with id {branch_id} not found."
        super().__init__(404, detail("branch_not_found", message))


class VersionNotFound(EmulatorError):
    def __init__(self, version_id: str) -> None:
        message = f"Agent version with id {version_id} not found."
        super().__init__(404, detail("agent_version_not_found", message))


class BadRequest(EmulatorError):
    """A 400 ``{"detail": {"status", "message"}}`` the API answers from its own checks."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(400, detail(status, message))


class InputInvalid(BadRequest):
    """400 ``input_invalid``: what the API answers for a bad nested field of an agent body
    (``conversation_config`` is a free object in the spec, checked by the app, not FastAPI)
    [field, one public report for a locator without ``name``]."""

    def __init__(self, msg: str, loc: list[str | int]) -> None:
        super().__init__("input_invalid", f"{msg}: {loc}")


class CodedError(EmulatorError):
    """An error whose detail's ``status`` and ``code`` are both :attr:`code`; it gets the
    request's id."""

    code = ""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, detail(self.code, message, code=self.code))


class DocumentHasDependentAgents(CodedError):
    code = "document_has_dependent_agents"

    def __init__(self, doc_id: str, count: int) -> None:
        message = (
            f"Document {doc_id} cannot be deleted because it is used by {count} agent(s). "
            "Remove it from the agents first or use force=true."
        )
        super().__init__(400, message)


class RagIndexNotReady(CodedError):
    code = "rag_index_not_ready"

    def __init__(self, model: str, doc_ids: list[str]) -> None:
        message = (
            f"RAG index for model {model} is not ready for documents: "
            + ", ".join(doc_ids)
            + ". Compute the index and wait until it succeeds before attaching "
            "the documents in auto mode."
        )
        super().__init__(422, message)


class RagNotEnabled(CodedError):
    code = "rag_not_enabled"

    def __init__(self) -> None:
        super().__init__(400, "RAG is not enabled for this agent.")


# --------------------------------------------------------------------------- 422 validation


class ValidationFailed(EmulatorError):
    """422 ``{"detail": [error, ...]}``, the FastAPI request-validation shape."""

    def __init__(self, *errors: ErrorItem) -> None:
        super().__init__(422, list(errors))


TYPE_MESSAGES = {
    "string_type": "Input should be a valid string",
    "dict_type": "Input should be a valid dictionary",
    "list_type": "Input should be a valid list",
    "bool_type": "Input should be a valid boolean",
    "model_attributes_type": "Input should be a valid dictionary or object to extract fields from",
}


def error(kind: str, loc: Loc, msg: str, inp: Any, ctx: dict[str, Any] | None = None) -> ErrorItem:
    item: ErrorItem = {"type": kind, "loc": loc, "msg": msg, "input": inp}
    if ctx is not None:
        item["ctx"] = ctx
    return item


def missing(loc: Loc, inp: Any) -> ErrorItem:
    return error("missing", loc, "Field required", inp)


def type_error(loc: Loc, kind: str, inp: Any) -> ErrorItem:
    return error(kind, loc, TYPE_MESSAGES.get(kind, kind), inp)


def enum_error(loc: Loc, allowed: Iterable[str], inp: Any) -> ErrorItem:
    options = [f"'{a}'" for a in allowed]
    expected = ", ".join(options[:-1]) + " or " + options[-1]
    return error("enum", loc, f"Input should be {expected}", inp, {"expected": expected})


def too_short(loc: Loc, inp: Any) -> ErrorItem:
    msg = "String should have at least 1 character"
    return error("string_too_short", loc, msg, inp, {"min_length": 1})


def too_long(loc: Loc, inp: Any, max_length: int) -> ErrorItem:
    msg = f"String should have at most {max_length} characters"
    return error("string_too_long", loc, msg, inp, {"max_length": max_length})


def list_length(loc: Loc, inp: list[Any], lo: int, hi: int) -> ErrorItem:
    if len(inp) < lo:
        items = "item" if lo == 1 else "items"
        msg = f"List should have at least {lo} {items} after validation, not {len(inp)}"
        return error("too_short", loc, msg, inp, {"field_type": "List", "min_length": lo})
    msg = f"List should have at most {hi} items after validation, not {len(inp)}"
    return error("too_long", loc, msg, inp, {"field_type": "List", "max_length": hi})


def greater_than(loc: Loc, raw: str, lo: int) -> ErrorItem:
    return error("greater_than", loc, f"Input should be greater than {lo}", raw, {"gt": lo})


def json_invalid(pos: int, reason_text: str) -> ErrorItem:
    return error("json_invalid", ["body", pos], "JSON decode error", {}, {"error": reason_text})


def int_parsing(loc: Loc, raw: str) -> ErrorItem:
    msg = "Input should be a valid integer, unable to parse string as an integer"
    return error("int_parsing", loc, msg, raw)


def greater_than_equal(loc: Loc, raw: str, lo: int) -> ErrorItem:
    msg = f"Input should be greater than or equal to {lo}"
    return error("greater_than_equal", loc, msg, raw, {"ge": lo})


def less_than_equal(loc: Loc, raw: str, hi: int) -> ErrorItem:
    msg = f"Input should be less than or equal to {hi}"
    return error("less_than_equal", loc, msg, raw, {"le": hi})


def bool_parsing(loc: Loc, raw: str) -> ErrorItem:
    msg = "Input should be a valid boolean, unable to interpret input"
    return error("bool_parsing", loc, msg, raw)


def value_error(loc: Loc, what: str, inp: Any) -> ErrorItem:
    return error("value_error", loc, f"Value error, {what}", inp)


# --------------------------------------------------------------------------- control plane


class ControlError(Exception):
    """A bad ``/_emulator/`` request: 400 ``{"error": ...}`` (never an ElevenLabs body)."""
