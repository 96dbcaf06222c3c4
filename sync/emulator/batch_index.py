"""``POST /v1/convai/knowledge-base/rag-index``: RAG indexes computed (get-or-create) in batch.

The body is ``{"items": [{"document_id", "create_if_missing", "model"}]}``, 1 to 100 items
[spec]; the answer an object, each value ``{"status": "success", "data": <the index, as the
one-document compute answers it>}`` or ``{"status": "failure", "error_code", "error_status",
"error_message"}`` [spec], keyed by document id [guess: the spec, the SDKs and the docs name no
key; row 31d]. An item is handled as the
one-document endpoint handles its request (a folder ``cannot_index_folder``, the quota,
a failed index restarted), one after the other in the order sent; what the single endpoint
answers with an HTTP error (an unknown document) is that item's failure [spec: the failure
model]. Guesses (``docs/emulator.md``, rows 31-31d): a duplicate ``document_id`` is a 422; an
item with ``create_if_missing: false`` and no index is a 404 failure ``rag_index_not_found``;
``error_code`` is the HTTP status the one-document call would have answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sync.emulator.exceptions as exc
from sync.emulator.agents import EMBEDDING_MODELS
from sync.emulator.exceptions import EmulatorError, ErrorItem, Loc, ValidationFailed
from sync.emulator.models import Workspace
from sync.emulator.responses import index_view
from sync.emulator.validation import object_body
from sync.emulator.wire import Request, Response

MAX_ITEMS = 100  # [spec] maxItems
ITEMS_LOC: Loc = ["body", "items"]


@dataclass(frozen=True)
class Item:
    document_id: str
    create_if_missing: bool
    model: str


class IndexMissing(EmulatorError):
    """[guess] ``create_if_missing: false`` for a (document, model) with no index."""

    def __init__(self, doc_id: str, model: str) -> None:
        message = f"No RAG index of document {doc_id} for model {model}."
        super().__init__(404, exc.detail("rag_index_not_found", message))


def _item_errors(i: int, raw: Any) -> list[ErrorItem]:
    loc: Loc = [*ITEMS_LOC, i]
    if not isinstance(raw, dict):
        return [exc.type_error(loc, "model_attributes_type", raw)]
    errors: list[ErrorItem] = []
    for key, kind, ok in (
        ("document_id", "string_type", isinstance(raw.get("document_id"), str)),
        ("create_if_missing", "bool_type", isinstance(raw.get("create_if_missing"), bool)),
    ):
        if key not in raw:
            errors.append(exc.missing([*loc, key], raw))
        elif not ok:
            errors.append(exc.type_error([*loc, key], kind, raw[key]))
    if "model" not in raw:
        errors.append(exc.missing([*loc, "model"], raw))
    elif raw["model"] not in EMBEDDING_MODELS:
        errors.append(exc.enum_error([*loc, "model"], EMBEDDING_MODELS, raw["model"]))
    return errors


def batch_body(data: dict[str, Any]) -> list[Item]:
    """The items: 1 to 100 [spec], each with its three required fields [spec], no document
    twice [guess: the answer is keyed by document id, so a repeat could not be answered]."""
    raw = data.get("items")
    if "items" not in data:
        raise ValidationFailed(exc.missing(ITEMS_LOC, data))
    if not isinstance(raw, list):
        raise ValidationFailed(exc.type_error(ITEMS_LOC, "list_type", raw))
    if not 1 <= len(raw) <= MAX_ITEMS:
        raise ValidationFailed(exc.list_length(ITEMS_LOC, raw, 1, MAX_ITEMS))
    errors = [e for i, item in enumerate(raw) for e in _item_errors(i, item)]
    if errors:
        raise ValidationFailed(*errors)
    ids = [str(item["document_id"]) for item in raw]
    if len(set(ids)) != len(ids):
        raise ValidationFailed(exc.value_error(ITEMS_LOC, "document_id must be unique", raw))
    return [Item(str(r["document_id"]), bool(r["create_if_missing"]), str(r["model"])) for r in raw]


def failure(err: EmulatorError) -> dict[str, Any]:
    detail = err.detail if isinstance(err.detail, dict) else {}
    return {
        "status": "failure",
        "error_code": err.status,
        "error_status": str(detail.get("status") or exc.reason(err.status)),
        "error_message": str(detail.get("message") or err.detail),
    }


def one(ws: Workspace, item: Item) -> dict[str, Any]:
    """One item, as the one-document endpoint would handle it; its answer in the batch."""
    try:
        doc = ws.doc(item.document_id)
        idx = ws.indexes.get((doc.id, item.model))
        if item.create_if_missing:
            idx = ws.compute_index(doc, item.model)
        elif idx is None:
            raise IndexMissing(doc.id, item.model)
    except EmulatorError as err:
        return failure(err)
    return {"status": "success", "data": index_view(ws, idx)}


def compute_batch(ws: Workspace, req: Request) -> Response:
    items = batch_body(object_body(req))
    return Response.of_json(200, {item.document_id: one(ws, item) for item in items})
