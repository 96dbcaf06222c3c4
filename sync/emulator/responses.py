"""The API's handlers: parse and validate the request, call the model, render the JSON view.

Each handler is ``handler(workspace, request) -> Response`` and is named in the route table
(:mod:`sync.emulator.urls`). Errors are raised (:mod:`sync.emulator.exceptions`), never
rendered here. The views (``*_view``) are the JSON shapes of the ElevenLabs API.
"""

from __future__ import annotations

import copy
from typing import Any

import sync.emulator.validation as check
from sync.emulator.agents import EMBEDDING_MODELS, OWNER, SPEC_DEFAULT_MODEL, Agent, Branch, rag_of
from sync.emulator.documents import children, descendants, folder_path, list_key
from sync.emulator.exceptions import RagNotEnabled, VersionNotFound
from sync.emulator.indexes import Index
from sync.emulator.models import BYTES_PER_PAGE, Doc, Workspace, first_words
from sync.emulator.retrieval import STRATEGY, Settings
from sync.emulator.wire import HTML, Request, Response

# --------------------------------------------------------------------------- views


# [spec] a folder's document_count: "Counting stops past 1000"; [guess] it then reads 1001
COUNT_STOPS_PAST = 1000


def doc_summary(ws: Workspace, doc: Doc) -> dict[str, Any]:
    """A document or folder in ``GET /knowledge-base``."""
    view: dict[str, Any] = {
        "id": doc.id,
        "name": doc.name,
        "metadata": {
            "created_at_unix_secs": int(doc.created_at),
            "last_updated_at_unix_secs": int(doc.updated_at),
            "size_bytes": doc.size_bytes,
        },
        "supported_usages": ["prompt", "auto"],
        "access_info": dict(OWNER),
        "folder_parent_id": doc.parent_id,
        "folder_path": folder_path(ws.docs, doc, names=False),
        "dependent_agents": [],  # deprecated in the real API: always empty there too
        "type": doc.type,
    }
    if doc.is_folder:
        under = descendants(ws.docs, doc.id)
        view["children_count"] = len(children(ws.docs.values(), doc.id))
        count = sum(1 for d in under if not d.is_folder)
        view["document_count"] = min(count, COUNT_STOPS_PAST + 1)
    return view


def doc_view(ws: Workspace, doc: Doc) -> dict[str, Any]:
    """GET /knowledge-base/{id}: the list item without the deprecated field, with the
    folder path's names, plus the content of a text document."""
    view = doc_summary(ws, doc)
    del view["dependent_agents"]
    view["folder_path"] = folder_path(ws.docs, doc, names=True)
    if not doc.is_folder:
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


def agent_view(agent: Agent, branch: Branch | None = None, version_id: str | None = None) -> Any:
    """GET /agents/{id}: a branch's body (main by default) or one version's, with the ids,
    timestamps and version of it."""
    branch = branch or agent.main
    version = branch.tip
    if version_id is not None:
        branch, version = agent.version_of(version_id) or (branch, version)
    body = copy.deepcopy(version.body if version_id is not None else branch.body)
    body["agent_id"] = agent.agent_id
    body["metadata"] = {
        "created_at_unix_secs": int(agent.created_at),
        "updated_at_unix_secs": int(version.at),
    }
    body.update(version_id=version.id, branch_id=branch.id, main_branch_id=agent.main_branch_id)
    return body


def dependents_view(ws: Workspace, doc_ids: list[str]) -> dict[str, Any]:
    """Agents using any of the docs on any branch (once each), and every such branch."""
    pairs = [pair for doc_id in doc_ids for pair in ws.dependent_branches(doc_id)]
    agents: dict[str, dict[str, Any]] = {}
    branches: dict[tuple[str, str], dict[str, Any]] = {}
    for agent, branch in pairs:
        name = str(agent.body.get("name", ""))
        agents.setdefault(agent.agent_id, _dependent(agent, name, doc_ids))
        branches.setdefault(
            (agent.agent_id, branch.id),
            {
                "agent_id": agent.agent_id,
                "agent_name": name,
                "branch_id": branch.id,
                "branch_name": branch.name,
                "is_main": branch is agent.main,
            },
        )
    return {
        "agents": list(agents.values()),
        "branches": list(branches.values()),
        "next_cursor": None,
        "has_more": False,
    }


def _dependent(agent: Agent, name: str, doc_ids: list[str]) -> dict[str, Any]:
    return {
        "id": agent.agent_id,
        "name": name,
        "type": "available",
        "created_at_unix_secs": int(agent.created_at),
        "access_level": "admin",
        "referenced_resource_ids": list(doc_ids),
    }


def _ok(data: Any) -> Response:
    return Response.of_json(200, data)


# --------------------------------------------------------------------------- documents


def create_text(ws: Workspace, req: Request) -> Response:
    text, name, parent = check.create_text_body(check.object_body(req))
    doc = ws.create_doc(name if name is not None else first_words(text), text, "markdown", parent)
    return _ok({"id": doc.id, "name": doc.name, "folder_path": folder_path(ws.docs, doc, False)})


def create_folder(ws: Workspace, req: Request) -> Response:
    name, parent = check.folder_body(check.object_body(req))
    doc = ws.create_doc(name, "", "markdown", parent, kind="folder")
    return _ok({"id": doc.id, "name": doc.name, "folder_path": folder_path(ws.docs, doc, False)})


def move_doc(ws: Workspace, req: Request) -> Response:
    doc = ws.doc(req.params["doc_id"])
    ws.move(doc, check.move_to(check.object_body(req, required=False)))
    return _ok({})


def bulk_move(ws: Workspace, req: Request) -> Response:
    data = check.object_body(req)
    ids, to = check.document_ids(data), check.move_to(data)
    docs = [ws.doc(doc_id) for doc_id in ids]
    for doc in docs:  # all found first: nothing moves when one id is unknown [guess]
        ws.move(doc, to)
    return _ok({})


def list_docs(ws: Workspace, req: Request) -> Response:
    q = check.list_query(req)
    docs = ws.list_docs(q)
    page = docs[: q.page_size]
    has_more = len(docs) > q.page_size
    return _ok(
        {
            "documents": [doc_summary(ws, d) for d in page],
            "next_cursor": check.encode_cursor(list_key(page[-1], q)) if has_more else None,
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
    return _ok(doc_view(ws, ws.doc(req.params["doc_id"])))


def patch_doc(ws: Workspace, req: Request) -> Response:
    doc = ws.doc(req.params["doc_id"])
    name, content = check.patch_doc_body(check.object_body(req, required=False))
    ws.update_doc(doc, name, content)
    return _ok(doc_view(ws, doc))


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
    return _ok(dependents_view(ws, [] if kind == "transitive" else [doc.id]))


def bulk_dependents(ws: Workspace, req: Request) -> Response:
    ids = check.document_ids(check.object_body(req))
    check.int_param(req, "page_size", 30, 1, 100)
    kind = check.dependent_type(req)
    for doc_id in ids:
        ws.doc(doc_id)
    return _ok(dependents_view(ws, [] if kind == "transitive" else ids))


def compute_index(ws: Workspace, req: Request) -> Response:
    doc = ws.doc(req.params["doc_id"])
    model = check.model_body(check.object_body(req), EMBEDDING_MODELS)
    return _ok(index_view(ws, ws.compute_index(doc, model)))


def list_indexes(ws: Workspace, req: Request) -> Response:
    doc = ws.doc(req.params["doc_id"])
    return _ok({"indexes": [index_view(ws, i) for i in ws.indexes_of(doc.id)]})


# --------------------------------------------------------------------------- agents


def get_agent(ws: Workspace, req: Request) -> Response:
    agent = ws.agent(req.params["agent_id"])
    branch = ws.branch(agent, req.one("branch_id"))
    version_id = req.one("version_id")
    if version_id is not None and agent.version_of(version_id) is None:
        raise VersionNotFound(version_id)
    return _ok(agent_view(agent, branch, version_id))


def patch_agent(ws: Workspace, req: Request) -> Response:
    agent = ws.agent(req.params["agent_id"])
    branch = ws.branch(agent, req.one("branch_id"))
    patch, new_kb = check.agent_patch_body(check.object_body(req))
    ws.update_agent(agent, patch, new_kb, branch)
    return _ok(agent_view(agent, branch))


def agent_kb_size(ws: Workspace, req: Request) -> Response:
    agent = ws.agent(req.params["agent_id"])
    return _ok({"number_of_pages": round(ws.kb_bytes(agent) / BYTES_PER_PAGE, 2)})


def rag_query(ws: Workspace, req: Request) -> Response:
    """Retrieval as the agent (its branch ``branch_id``, main by default) would do it; the
    agent's embedding model always, its other RAG settings unless ``use_agent_defaults`` is
    false [spec]."""
    agent = ws.agent(req.params["agent_id"])
    branch = ws.branch(agent, req.one("branch_id"))
    query, use_defaults = check.rag_query_body(check.object_body(req))
    rag = rag_of(branch.body)
    if not rag.get("enabled"):
        raise RagNotEnabled()
    model = rag.get("embedding_model", SPEC_DEFAULT_MODEL)
    chunks = ws.rag_chunks(branch, query, model, Settings.of(rag, use_defaults))
    return _ok({"strategy": STRATEGY, "retrieval_query": query, "chunks": chunks})
