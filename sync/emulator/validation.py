"""Request validation: bodies, query parameters, cursors, knowledge-base locators, the API key.

Everything here reads a :class:`~sync.emulator.wire.Request` (or part of one) and either
returns clean values or raises :class:`~sync.emulator.exceptions.ValidationFailed` (422) /
an auth error (401). Nothing here touches the workspace.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sync.emulator.exceptions as exc
from sync.emulator.exceptions import ErrorItem, Loc, ValidationFailed
from sync.emulator.wire import Request

DOC_TYPES = ("file", "url", "text", "folder")
USAGE_MODES = ("prompt", "auto")
SORT_FIELDS = ("name", "created_at", "updated_at", "size")
DIRECTIONS = ("asc", "desc")
DEPENDENT_TYPES = ("direct", "transitive", "all")
KB_LOC: Loc = ["body", "conversation_config", "agent", "prompt", "knowledge_base"]
TRUE = ("true", "1", "yes", "on", "t", "y")
FALSE = ("false", "0", "no", "off", "f", "n")


def check_api_key(headers: dict[str, str], expected: str | None) -> None:
    key = headers.get("xi-api-key")
    if not key:
        raise exc.NeedsAuthorization()
    if expected is not None and key != expected:
        raise exc.InvalidApiKey()


# --------------------------------------------------------------------------- bodies


def json_body(req: Request, required: bool = True) -> Any:
    if not req.body.strip():
        if required:
            raise ValidationFailed(exc.missing(["body"], None))
        return {}
    try:
        return json.loads(req.body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValidationFailed(exc.json_invalid(getattr(err, "pos", 0), str(err))) from err


def object_body(req: Request, required: bool = True) -> dict[str, Any]:
    data = json_body(req, required)
    if not isinstance(data, dict):
        raise ValidationFailed(exc.type_error(["body"], "model_attributes_type", data))
    return data


def _raise_if(errors: list[ErrorItem]) -> None:
    if errors:
        raise ValidationFailed(*errors)


def _name_errors(name: Any) -> list[ErrorItem]:
    """An optional, non-empty string ``name``."""
    if name is not None and not isinstance(name, str):
        return [exc.type_error(["body", "name"], "string_type", name)]
    if isinstance(name, str) and not name:
        return [exc.too_short(["body", "name"], name)]
    return []


def _string_errors(data: dict[str, Any], key: str) -> list[ErrorItem]:
    """An optional string ``key``."""
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        return [exc.type_error(["body", key], "string_type", value)]
    return []


def required_string(data: dict[str, Any], key: str) -> str:
    """A required string ``key`` (one error: missing, or not a string)."""
    errors = _required_string_errors(data, key)
    _raise_if(errors)
    value: str = data[key]
    return value


def _required_string_errors(data: dict[str, Any], key: str) -> list[ErrorItem]:
    if key not in data:
        return [exc.missing(["body", key], data)]
    if not isinstance(data[key], str):
        return [exc.type_error(["body", key], "string_type", data[key])]
    return []


def create_text_body(data: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """``POST /knowledge-base/text``: ``(text, name or None, parent_folder_id or None)``."""
    errors = _required_string_errors(data, "text")
    errors += _name_errors(data.get("name"))
    errors += _string_errors(data, "parent_folder_id")
    _raise_if(errors)
    name = data.get("name")
    return data["text"], name if isinstance(name, str) else None, data.get("parent_folder_id")


def folder_body(data: dict[str, Any]) -> tuple[str, str | None]:
    """``POST /knowledge-base/folder``: ``(name, parent_folder_id or None)``."""
    errors = _required_string_errors(data, "name")
    if not errors:
        errors += _name_errors(data["name"])
    errors += _string_errors(data, "parent_folder_id")
    for key in ("enable_auto_sync", "auto_remove"):
        errors += _bool_errors(data, key)
    _raise_if(errors)
    return data["name"], data.get("parent_folder_id")


def move_to(data: dict[str, Any]) -> str | None:
    """``move_to`` of a move or bulk-move body (``None``: the root)."""
    _raise_if(_string_errors(data, "move_to"))
    value: str | None = data.get("move_to")
    return value


def document_ids(data: dict[str, Any]) -> list[str]:
    """``document_ids``: 1 to 20 distinct strings (bulk move, bulk dependents)."""
    ids = data.get("document_ids")
    loc: Loc = ["body", "document_ids"]
    if ids is None:
        raise ValidationFailed(exc.missing(loc, data))
    if not isinstance(ids, list):
        raise ValidationFailed(exc.type_error(loc, "list_type", ids))
    errors = [exc.type_error([*loc, i], "string_type", v) for i, v in enumerate(ids)]
    errors = [e for e, v in zip(errors, ids, strict=True) if not isinstance(v, str)]
    if not 1 <= len(ids) <= 20:
        errors.append(exc.list_length(loc, ids, 1, 20))
    elif len(set(map(str, ids))) != len(ids):
        errors.append(exc.error("set_type", loc, "List items should be unique", ids))
    _raise_if(errors)
    return [str(i) for i in ids]


def rag_query_body(data: dict[str, Any]) -> tuple[str, bool]:
    """``POST .../rag-query``: ``(query, use_agent_defaults)``; ``query`` at least 1 char."""
    errors = _required_string_errors(data, "query")
    if not errors and not data["query"]:
        errors.append(exc.too_short(["body", "query"], data["query"]))
    errors += _bool_errors(data, "use_agent_defaults")
    _raise_if(errors)
    return data["query"], data.get("use_agent_defaults", True) is not False


def _bool_errors(data: dict[str, Any], key: str, nullable: bool = False) -> list[ErrorItem]:
    value = data.get(key)
    if key not in data or isinstance(value, bool) or (nullable and value is None):
        return []
    return [exc.type_error(["body", key], "bool_type", value)]


def patch_doc_body(data: dict[str, Any]) -> tuple[str | None, str | None]:
    """``PATCH /knowledge-base/{id}``: ``(name, content)``, each ``None`` when absent."""
    _raise_if(_name_errors(data.get("name")) + _string_errors(data, "content"))
    return data.get("name"), data.get("content")


def model_body(data: dict[str, Any], models: tuple[str, ...]) -> str:
    """``POST .../rag-index``: a known embedding model."""
    if "model" not in data:
        raise ValidationFailed(exc.missing(["body", "model"], data))
    model = data.get("model")
    if model not in models:
        raise ValidationFailed(exc.enum_error(["body", "model"], models, model))
    return str(model)


def agent_patch_body(data: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """``PATCH /agents/{id}``: the patch (null fields and ``version_description`` dropped)
    and the validated new knowledge base, or ``None`` when the patch does not set one."""
    errors: list[ErrorItem] = []
    for key in ("conversation_config", "platform_settings"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            errors.append(exc.type_error(["body", key], "dict_type", data[key]))
    errors += _string_errors(data, "name")
    tags = data.get("tags")
    if tags is not None and (
        not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)
    ):
        errors.append(exc.type_error(["body", "tags"], "list_type", tags))
    _raise_if(errors)
    patch = {k: v for k, v in data.items() if v is not None and k != "version_description"}
    cc = data.get("conversation_config") or {}
    prompt = cc.get("agent", {}).get("prompt") if isinstance(cc.get("agent"), dict) else None
    if isinstance(prompt, dict) and "knowledge_base" in prompt:
        return patch, locators(prompt["knowledge_base"], KB_LOC)
    return patch, None


def locators(value: Any, loc: Loc) -> list[dict[str, Any]]:
    """A knowledge-base list; ``usage_mode`` defaults to ``auto``. The first error is a 400
    ``input_invalid`` naming it (``conversation_config`` is a free object in the spec: the
    app checks it, not FastAPI) [field, one report: a locator without ``name``]."""
    try:
        return _locators(value, loc)
    except ValidationFailed as failed:
        first = failed.detail[0]
        raise exc.InputInvalid(first["msg"], first["loc"]) from None


def _locators(value: Any, loc: Loc) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise ValidationFailed(exc.type_error(loc, "list_type", value))
    errors: list[ErrorItem] = []
    out: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        here = [*loc, i]
        if not isinstance(item, dict):
            errors.append(exc.type_error(here, "model_attributes_type", item))
            continue
        for key in ("type", "name", "id"):
            if key not in item:
                errors.append(exc.missing([*here, key], item))
            elif not isinstance(item[key], str):
                errors.append(exc.type_error([*here, key], "string_type", item[key]))
        if isinstance(item.get("type"), str) and item["type"] not in DOC_TYPES:
            errors.append(exc.enum_error([*here, "type"], DOC_TYPES, item["type"]))
        mode = item.get("usage_mode", "auto")
        if mode not in USAGE_MODES:
            errors.append(exc.enum_error([*here, "usage_mode"], USAGE_MODES, mode))
        out.append({**item, "usage_mode": mode})
    _raise_if(errors)
    return out


# --------------------------------------------------------------------------- query parameters


def int_param(req: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = req.one(name)
    if raw is None:
        return default
    loc: Loc = ["query", name]
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed(exc.int_parsing(loc, raw)) from None
    if value < lo:
        raise ValidationFailed(exc.greater_than_equal(loc, raw, lo))
    if value > hi:
        raise ValidationFailed(exc.less_than_equal(loc, raw, hi))
    return value


def bool_param(req: Request, name: str, default: bool) -> bool:
    raw = req.one(name)
    if raw is None:
        return default
    if raw.lower() in TRUE:
        return True
    if raw.lower() in FALSE:
        return False
    raise ValidationFailed(exc.bool_parsing(["query", name], raw))


def _enum_errors(loc: Loc, allowed: tuple[str, ...], value: str) -> list[ErrorItem]:
    return [] if value in allowed else [exc.enum_error(loc, allowed, value)]


def dependent_type(req: Request) -> str:
    kind = req.one("dependent_type") or "all"
    _raise_if(_enum_errors(["query", "dependent_type"], DEPENDENT_TYPES, kind))
    return kind


@dataclass(frozen=True)
class ListQuery:
    """``GET /knowledge-base``'s parameters, validated."""

    page_size: int
    types: list[str]
    sort_by: str
    descending: bool
    search: str | None
    after: list[Any] | None  # the decoded cursor: the last item's sort key
    parent: str | None = None  # parent_folder_id: direct children only
    ancestor: str | None = None  # ancestor_folder_id: everything under it
    folders_first: bool = False


def list_query(req: Request) -> ListQuery:
    page_size = int_param(req, "page_size", 30, 1, 100)
    types = req.query.get("types") or []
    errors = [
        exc.enum_error(["query", "types", i], DOC_TYPES, t)
        for i, t in enumerate(types)
        if t not in DOC_TYPES
    ]
    sort_by = req.one("sort_by") or "created_at"
    errors += _enum_errors(["query", "sort_by"], SORT_FIELDS, sort_by)
    direction = req.one("sort_direction") or "desc"
    errors += _enum_errors(["query", "sort_direction"], DIRECTIONS, direction)
    _raise_if(errors)
    search = req.one("search")
    cursor = req.one("cursor")
    after = decode_cursor(cursor) if cursor else None
    parent, ancestor = req.one("parent_folder_id"), req.one("ancestor_folder_id")
    folders_first = bool_param(req, "folders_first", False)
    return ListQuery(
        page_size,
        types,
        sort_by,
        direction == "desc",
        search,
        after,
        parent,
        ancestor,
        folders_first,
    )


# --------------------------------------------------------------------------- cursors


def encode_cursor(key: Iterable[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        if not isinstance(key, list) or len(key) not in (2, 3):
            raise ValueError(cursor)
        return key
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed(
            exc.value_error(["query", "cursor"], "invalid cursor", cursor)
        ) from None


# --------------------------------------------------------------------------- branches

PROTECTION = ("writer_perms_required", "admin_perms_required")


def _bounded_string(data: dict[str, Any], key: str, required: bool, hi: int) -> list[ErrorItem]:
    if key not in data or data[key] is None:
        return [exc.missing(["body", key], data)] if required else []
    if not isinstance(data[key], str):
        return [exc.type_error(["body", key], "string_type", data[key])]
    return [exc.too_long(["body", key], data[key], hi)] if len(data[key]) > hi else []


def create_branch_body(data: dict[str, Any]) -> dict[str, Any]:
    """``POST /agents/{id}/branches``: the body, checked (``parent_version_id``, ``name`` and
    ``description`` required; config changes are objects)."""
    errors = _required_string_errors(data, "parent_version_id")
    errors += _bounded_string(data, "name", True, 140)
    errors += _bounded_string(data, "description", True, 4096)
    for key in ("conversation_config", "platform_settings"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            errors.append(exc.type_error(["body", key], "dict_type", data[key]))
    _raise_if(errors)
    return data


def patch_branch_body(data: dict[str, Any]) -> dict[str, Any]:
    """``PATCH .../branches/{id}``: ``name`` (1..140), ``is_archived``, ``protection_status``,
    each optional; the ones given and not null."""
    errors = _bounded_string(data, "name", False, 140) + _name_errors(data.get("name"))
    errors += _bool_errors(data, "is_archived", nullable=True)
    status = data.get("protection_status")
    if status is not None:
        errors += _enum_errors(["body", "protection_status"], PROTECTION, status)
    _raise_if(errors)
    return {k: v for k, v in data.items() if v is not None}


def merge_body(req: Request) -> tuple[str, bool, bool]:
    """``POST .../merge?target_branch_id=``: ``(target, archive_source_branch, force)``."""
    data = object_body(req, required=False)
    target = req.one("target_branch_id")
    errors = [] if target else [exc.missing(["query", "target_branch_id"], None)]
    errors += _bool_errors(data, "archive_source_branch") + _bool_errors(data, "force")
    _raise_if(errors)
    return str(target), data.get("archive_source_branch", True), data.get("force", False)


def branch_list_query(req: Request) -> tuple[bool, int]:
    """``GET /agents/{id}/branches``: ``(include_archived, limit)``; ``limit`` 2..100 (the
    spec's ``exclusiveMinimum: 1``)."""
    limit = int_param(req, "limit", 100, 1, 100)
    if limit <= 1:
        raise ValidationFailed(exc.greater_than(["query", "limit"], str(limit), 1))
    return bool_param(req, "include_archived", False), limit
