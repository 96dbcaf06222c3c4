"""The API's handlers: parse and validate the request, call the model, render the JSON view.

Each handler is ``handler(workspace, request) -> Response`` and is named in the route table
(:mod:`sync.emulator.urls`). Errors are raised (:mod:`sync.emulator.exceptions`), never
rendered here. The views (``*_view``) are the JSON shapes of the ElevenLabs API.
"""

from __future__ import annotations

import copy
from typing import Any

import sync.emulator.validation as check
from sync.emulator.agents import EMBEDDING_MODELS, OWNER, SPEC_DEFAULT_MODEL, Agent, rag_of
from sync.emulator.exceptions import RagNotEnabled
from sync.emulator.indexes import Index
from sync.emulator.models import BYTES_PER_PAGE, Doc, Workspace, first_words, sort_key
from sync.emulator.retrieval import RAG_QUERY_TOP
from sync.emulator.wire import HTML, Request, Response

# --------------------------------------------------------------------------- views


def doc_summary(doc: Doc) -> dict[str, Any]:
    """A document in ``GET /knowledge-base``."""
    return {
        "id": doc.id,
        "name": doc.name,
        "metadata": {
            "created_at_unix_secs": int(doc.created_at),
            "last_updated_at_unix_secs": int(doc.updated_at),
            "size_bytes": doc.size_bytes,
        },
        "supported_usages": ["prompt", "auto"],
        "access_info": dict(OWNER),
        "folder_parent_id": None,
        "folder_path": [],
        "dependent_agents": [],  # deprecated in the real API: always empty there too
        "type": "text",
    }


def doc_view(doc: Doc) -> dict[str, Any]:
    """GET /knowledge-base/{id}: the list item without the deprecated field, plus content."""
    view = doc_summary(doc)
    del view["dependent_agents"]
    view.update(extracted_inner_html=doc.html, content_format=doc.content_format)
    return view


def index_view(ws: Workspace, idx: Index) -> dict[str, Any]:
    status, progress = ws.index_state(idx)
    return {
        "id": idx.id,
        "model": idx.model,
        "status": status,
        "progress_percentage": progress,
        "document_model_index_usage": {"used_bytes": ws.index_used(idx)},
    }


def agent_view(agent: Agent) -> dict[str, Any]:
    """GET /agents/{id}: the stored body with its id, timestamps and version id."""
    body = copy.deepcopy(agent.body)
    body["agent_id"] = agent.agent_id
    body["metadata"] = {
        "created_at_unix_secs": int(agent.created_at),
        "updated_at_unix_secs": int(agent.updated_at),
    }
    body["version_id"] = agent.version_id
    return body


def dependent_view(agent: Agent, doc_id: str) -> dict[str, Any]:
    return {
        "id": agent.agent_id,
        "name": agent.body.get("name", ""),
        "type": "available",
        "created_at_unix_secs": int(agent.created_at),
        "access_level": "admin",
        "referenced_resource_ids": [doc_id],
    }


def _ok(data: Any) -> Response:
    return Response.of_json(200, data)


# --------------------------------------------------------------------------- documents


def create_text(ws: Workspace, req: Request) -> Response:
    text, name = check.create_text_body(check.object_body(req))
    doc = ws.create_doc(name if name is not None else first_words(text), text, "markdown")
    return _ok({"id": doc.id, "name": doc.name, "folder_path": []})


def list_docs(ws: Workspace, req: Request) -> Response:
    q = check.list_query(req)
    docs = ws.list_docs(q.types, q.search, q.sort_by, q.descending, q.after)
    page = docs[: q.page_size]
    has_more = len(docs) > q.page_size
    return _ok(
        {
            "documents": [doc_summary(d) for d in page],
            "next_cursor": check.encode_cursor(sort_key(page[-1], q.sort_by)) if has_more else None,
            "has_more": has_more,
        }
    )


def rag_overview(ws: Workspace, req: Request) -> Response:
    per_model = ws.usage_by_model()
    return _ok(
        {
            "total_used_bytes": sum(per_model.values()),
            "total_max_bytes": ws.quota_bytes,
            "models": [{"model": m, "used_bytes": b} for m, b in sorted(per_model.items())],
        }
    )


def get_doc(ws: Workspace, req: Request) -> Response:
    return _ok(doc_view(ws.doc(req.params["doc_id"])))


def patch_doc(ws: Workspace, req: Request) -> Response:
    doc = ws.doc(req.params["doc_id"])
    name, content = check.patch_doc_body(check.object_body(req, required=False))
    ws.update_doc(doc, name, content)
    return _ok(doc_view(doc))


def delete_doc(ws: Workspace, req: Request) -> Response:
    doc = ws.doc(req.params["doc_id"])
    ws.delete_doc(doc, force=check.bool_param(req, "force", False))
    return _ok({})


def doc_content(ws: Workspace, req: Request) -> Response:
    doc = ws.doc(req.params["doc_id"])
    return Response(200, doc.content().encode("utf-8"), content_type=HTML)


def dependent_agents(ws: Workspace, req: Request) -> Response:
    doc = ws.doc(req.params["doc_id"])
    check.int_param(req, "page_size", 30, 1, 100)
    kind = check.dependent_type(req)
    ids = [] if kind == "transitive" else ws.dependent_ids(doc.id)
    agents = [dependent_view(ws.agents[agent_id], doc.id) for agent_id in ids]
    return _ok({"agents": agents, "branches": [], "next_cursor": None, "has_more": False})


def compute_index(ws: Workspace, req: Request) -> Response:
    doc = ws.doc(req.params["doc_id"])
    model = check.model_body(check.object_body(req), EMBEDDING_MODELS)
    return _ok(index_view(ws, ws.compute_index(doc, model)))


def list_indexes(ws: Workspace, req: Request) -> Response:
    doc = ws.doc(req.params["doc_id"])
    return _ok({"indexes": [index_view(ws, i) for i in ws.indexes_of(doc.id)]})


# --------------------------------------------------------------------------- agents


def get_agent(ws: Workspace, req: Request) -> Response:
    return _ok(agent_view(ws.agent(req.params["agent_id"])))


def patch_agent(ws: Workspace, req: Request) -> Response:
    agent = ws.agent(req.params["agent_id"])
    patch, new_kb = check.agent_patch_body(check.object_body(req))
    ws.update_agent(agent, patch, new_kb)
    return _ok(agent_view(agent))


def agent_kb_size(ws: Workspace, req: Request) -> Response:
    agent = ws.agent(req.params["agent_id"])
    return _ok({"number_of_pages": round(ws.kb_bytes(agent) / BYTES_PER_PAGE, 2)})


def rag_query(ws: Workspace, req: Request) -> Response:
    agent = ws.agent(req.params["agent_id"])
    query = check.required_string(check.object_body(req), "query")
    rag = rag_of(agent.body)
    if not rag.get("enabled"):
        raise RagNotEnabled()
    model = rag.get("embedding_model", SPEC_DEFAULT_MODEL)
    limit = min(RAG_QUERY_TOP, int(rag.get("max_retrieved_rag_chunks_count", RAG_QUERY_TOP)))
    return _ok({"chunks": ws.retrieve(agent.agent_id, query, model, limit)})
