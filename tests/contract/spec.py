"""Check HTTP exchanges against the vendored ElevenLabs OpenAPI subset.

Reusable by any suite (the emulator's, the sync client's)::

    from tests.contract.spec import validate_exchange
    validate_exchange("GET", url, None, 200, {"Content-Type": "application/json"}, body)

How it checks (openapi-core 0.23.1 against the OpenAPI 3.1 file, plus two local rules):

- the REQUEST (path, query, header params, JSON body) is validated unless the response is a
  422: a 422 means the server itself found the request invalid, which negative tests do on
  purpose. openapi-core 0.23.1 cannot deserialize a repeated query key whose schema is
  ``anyOf: [array, null]`` (``types``), so those parameters are checked here with jsonschema
  against the array's item schema, and removed before openapi-core sees the request;
- a RESPONSE whose status the spec lists (200, 422) is validated against that schema, except a
  422 whose ``detail`` is an object: the real API answers ``rag_index_not_ready`` that way,
  outside its own spec, so it is checked against :data:`ERROR_SCHEMA` like every other status
  the spec does not list (400, 401, 404, 405, 429, 5xx). Non-JSON error bodies (a proxy's or
  Starlette's plain ``Internal Server Error``) are accepted for 5xx only;
- paths the subset does not cover (``/_emulator/`` control, anything outside the 28 paths)
  are skipped: :func:`validate_exchange` returns ``False`` for them and ``True`` when it checked.

A violation raises :class:`ContractViolation` (an ``AssertionError``).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import jsonschema  # type: ignore[import-untyped]
import requests

SPEC_PATH = Path(__file__).with_name("openapi-kb-subset.json")

#: The error body every non-spec status must have: ``detail`` a string, or an object with at
#: least ``status`` (or ``code``) and ``message``.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {
            "anyOf": [
                {"type": "string"},
                {
                    "type": "object",
                    "required": ["message"],
                    "anyOf": [{"required": ["status"]}, {"required": ["code"]}],
                    "properties": {
                        "status": {"type": "string"},
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "type": {"type": "string"},
                        "request_id": {"type": "string"},
                        "param": {"type": ["string", "null"]},
                    },
                },
            ]
        }
    },
}


class ContractViolation(AssertionError):
    pass


@functools.cache
def _raw_spec() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return data


@functools.cache
def openapi() -> Any:
    from openapi_core import Config, OpenAPI

    # The vendored spec is trusted; validating the 860 kB document itself only costs time.
    return OpenAPI.from_file_path(str(SPEC_PATH), config=Config(spec_validator_cls=None))


@functools.cache
def _operations() -> list[tuple[str, re.Pattern[str], str, dict[str, Any]]]:
    ops = []
    for path, item in _raw_spec()["paths"].items():
        regex = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                ops.append((method.upper(), regex, path, op))
    # literal segments before templated ones (``/knowledge-base/rag-index`` vs ``/{id}``)
    ops.sort(key=lambda o: o[2].count("{"))
    return ops


def find_operation(method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    for op_method, regex, template, op in _operations():
        if op_method == method.upper() and regex.match(path):
            return template, op
    return None


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if not ref:
        return schema
    node: Any = _raw_spec()
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return _resolve(node)


def _validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    wrapped = {**schema, "components": _raw_spec()["components"]}
    cls = jsonschema.validators.validator_for(wrapped, default=jsonschema.Draft202012Validator)
    return cls(wrapped)


def _array_query_params(op: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Query params whose schema is ``anyOf: [array, ...]``: name -> item schema."""
    out = {}
    for param in op.get("parameters", []):
        if param.get("in") != "query":
            continue
        for option in param.get("schema", {}).get("anyOf", []):
            if option.get("type") == "array":
                out[param["name"]] = option.get("items", {})
    return out


def _to_bytes(body: Any) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


def _json_or_none(body: bytes | None) -> Any:
    if not body:
        return None
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def validate_request(
    method: str, url: str, request_body: Any = None, headers: dict[str, str] | None = None
) -> bool:
    """Validate a request alone. ``False`` when the subset does not cover the path."""
    from openapi_core.contrib.requests import RequestsOpenAPIRequest

    split = urlsplit(url)
    found = find_operation(method, split.path)
    if found is None:
        return False
    _template, op = found
    arrays = _array_query_params(op)
    kept = []
    for key, value in parse_qsl(split.query, keep_blank_values=True):
        if key in arrays:
            errors = list(_validator(arrays[key]).iter_errors(value))
            if errors:
                raise ContractViolation(
                    f"{method} {url}: query {key}={value!r}: {errors[0].message}"
                )
        else:
            kept.append((key, value))
    clean_url = urlunsplit(split._replace(query=urlencode(kept)))
    body = _to_bytes(request_body)
    hdrs = {"xi-api-key": "contract-check", **(headers or {})}
    if body is not None:
        hdrs.setdefault("Content-Type", "application/json")
    prepared = requests.Request(method.upper(), clean_url, data=body, headers=hdrs).prepare()
    try:
        openapi().validate_request(RequestsOpenAPIRequest(prepared))
    except Exception as exc:
        raise ContractViolation(f"{method} {url}: request: {_explain(exc)}") from exc
    return True


def validate_exchange(
    method: str,
    url: str,
    request_body: Any,
    status: int,
    response_headers: dict[str, str] | None,
    response_body: Any,
    request_headers: dict[str, str] | None = None,
) -> bool:
    """Validate one request/response pair; see the module doc. Bodies may be bytes, str, or
    already-decoded JSON (dict/list). Returns ``False`` if the path is not in the subset."""
    from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

    split = urlsplit(url)
    found = find_operation(method, split.path)
    if found is None:
        return False
    _template, op = found
    if status != 422:
        validate_request(method, url, request_body, request_headers)
    headers = dict(response_headers or {})
    ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    raw = _to_bytes(response_body) or b""
    if not ctype:
        ctype = "application/json" if _json_or_none(raw) is not None else "text/plain"
        headers["Content-Type"] = ctype
    data = _json_or_none(raw)
    where = f"{method} {url} -> {status}"

    spec_statuses = set(op.get("responses", {}))
    detail_is_object = isinstance(data, dict) and isinstance(data.get("detail"), dict)
    if str(status) in spec_statuses and not (status == 422 and detail_is_object):
        if status == 422 and data is None:
            raise ContractViolation(f"{where}: a 422 must be JSON, got {raw[:200]!r}")
        prepared = requests.Request(
            method.upper(),
            url,
            data=_to_bytes(request_body),
            headers={"xi-api-key": "contract-check", "Content-Type": "application/json"},
        ).prepare()
        resp = requests.Response()
        resp.status_code = status
        resp._content = raw
        resp.headers.update(headers)
        resp.url = url
        try:
            openapi().validate_response(
                RequestsOpenAPIRequest(prepared), RequestsOpenAPIResponse(resp)
            )
        except Exception as exc:
            raise ContractViolation(f"{where}: response: {_explain(exc)}") from exc
        return True
    if 200 <= status < 300:
        raise ContractViolation(f"{where}: the spec defines no {status} for this operation")
    if data is None:
        if status >= 500:
            return True
        raise ContractViolation(f"{where}: an error body must be JSON, got {raw[:200]!r}")
    errors = sorted(jsonschema.Draft202012Validator(ERROR_SCHEMA).iter_errors(data), key=str)
    if errors:
        raise ContractViolation(f"{where}: error body {data!r}: {errors[0].message}")
    return True


def _explain(exc: BaseException) -> str:
    parts = [f"{type(exc).__name__}: {exc}"]
    seen = exc.__cause__ or exc.__context__
    while seen is not None and len(parts) < 4:
        extra = getattr(seen, "schema_errors", None)
        parts.append(f"{type(seen).__name__}: {seen}" + (f" {list(extra)[:3]}" if extra else ""))
        seen = seen.__cause__ or seen.__context__
    return " <- ".join(parts)


def validate_call(call: Any, base_url: str = "https://api.elevenlabs.io") -> bool:
    """Validate one entry of the emulator's call log (``sync.emulator.Call`` or its dict)."""
    c = call if isinstance(call, dict) else call.to_dict()
    if c.get("fault") and c["status"] < 400:
        return True  # a hostile server answering 2xx off-spec, on purpose: nothing to check
    if c.get("fault"):
        # an injected fault answers instead of the route; only its error shape is checked
        body = c["response_json"] if c["response_text"] is None else c["response_text"]
        return _check_error_only(c["method"], c["path"], c["status"], body)
    query = urlencode([(k, v) for k, vs in c["query"].items() for v in vs])
    url = base_url.rstrip("/") + c["path"] + (f"?{query}" if query else "")
    body = c["response_json"] if c["response_text"] is None else c["response_text"]
    return validate_exchange(
        c["method"],
        url,
        c["request_json"],
        c["status"],
        {"Content-Type": c.get("content_type") or "application/json"},
        body,
    )


def _check_error_only(method: str, path: str, status: int, body: Any) -> bool:
    data = body if isinstance(body, (dict, list)) else _json_or_none(_to_bytes(body))
    if data is None:
        if status >= 500:
            return True
        raise ContractViolation(f"{method} {path} -> {status}: non-JSON error body {body!r}")
    errors = list(jsonschema.Draft202012Validator(ERROR_SCHEMA).iter_errors(data))
    if errors:
        raise ContractViolation(f"{method} {path} -> {status}: {errors[0].message}")
    return True
