"""A small ElevenLabs API client: the knowledge-base, RAG-index and agent operations.

Errors become :mod:`sync.errors` exceptions carrying status, code and request id. The request
machinery (retries, the adaptive in-flight limit, the shared 429 back-off, the exchange record)
is :class:`sync.requester.Requester`; this module is the API's operations on top of it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote

from . import shapes
from .answers import Pages
from .errors import ApiError, ServerError, TransportError
from .log import event
from .requester import Json, Requester
from .shapes import Shape

__all__ = ["PAGE_SIZE", "Client", "Json"]

PAGE_SIZE = 100


class Client(Requester):
    """The API's operations (knowledge base, RAG indexes, agents, folders). Every answer kb-sync
    reads is checked against its shape (:mod:`sync.shapes`) here, once: a wrong one is one
    error line naming the endpoint, never a ``KeyError`` downstream or a listing read as empty."""

    def read(self, method: str, path: str, shape: Shape, **kwargs: Any) -> Json:
        """One request whose answer must have ``shape``."""
        return shapes.read(self.request(method, path, **kwargs), f"{method} {path}", shape)

    # -- agents ----------------------------------------------------------------------------
    def get_agent(self, agent_id: str) -> Json:
        return self.read("GET", f"/v1/convai/agents/{quote(agent_id, safe='')}", shapes.AGENT)

    def patch_agent_kb(self, agent_id: str, knowledge_base: list[Json]) -> Json:
        """The answer is not read (the agent is read back): not checked."""
        body = {"conversation_config": {"agent": {"prompt": {"knowledge_base": knowledge_base}}}}
        return dict(
            self.request("PATCH", f"/v1/convai/agents/{quote(agent_id, safe='')}", body=body)
        )

    def agent_kb_size(self, agent_id: str) -> Json:
        path = f"/v1/convai/agent/{quote(agent_id, safe='')}/knowledge-base/size"
        return self.read("GET", path, shapes.KB_SIZE)

    def rag_query(self, agent_id: str, query: str) -> Json:
        path = f"/v1/convai/agents/{quote(agent_id, safe='')}/knowledge-base/rag-query"
        return self.read("POST", path, shapes.RAG_QUERY, body={"query": query})

    # -- documents -------------------------------------------------------------------------
    def list_documents(
        self,
        search: str | None = None,
        *,
        parent_folder_id: str | None = None,
        types: tuple[str, ...] = (),
    ) -> Iterator[Json]:
        """Every page of the workspace's documents (and folders), narrowed by name prefix,
        by the folder they are directly in, and by type."""
        cursor: str | None = None
        pages = Pages("GET /v1/convai/knowledge-base")
        while True:
            params: dict[str, Any] = {"page_size": PAGE_SIZE}
            if search:
                params["search"] = search
            if parent_folder_id:
                params["parent_folder_id"] = parent_folder_id
            if types:
                params["types"] = list(types)
            if cursor:
                params["cursor"] = cursor
            page = self.read("GET", "/v1/convai/knowledge-base", shapes.LISTING, params=params)
            yield from page["documents"]
            cursor = pages.next(page)
            if cursor is None:
                return

    def get_document(self, doc_id: str) -> Json:
        return self.read("GET", f"/v1/convai/knowledge-base/{quote(doc_id, safe='')}", shapes.DOC)

    def get_content(self, doc_id: str) -> str:
        return str(
            self.request(
                "GET",
                f"/v1/convai/knowledge-base/{quote(doc_id, safe='')}/content",
                expect_json=False,
            )
        )

    def find_by_name(self, name: str) -> list[Json]:
        return [d for d in self.list_documents(search=name) if d.get("name") == name]

    def create_text(
        self,
        name: str,
        text: str,
        *,
        max_attempts: int = 3,
        known_ids: frozenset[str] = frozenset(),
        parent_folder_id: str | None = None,
    ) -> Json:
        """Create a text document without ever creating it twice.

        After an ambiguous failure (5xx, timeout, dropped connection) the document may exist:
        look for it by its exact name (names carry a content fingerprint) and size before
        creating again. ``known_ids``: documents of that name that existed before (an edit in
        the UI keeps the name), which are not this create's result.
        """
        size = len(text.encode("utf-8"))
        last: ApiError | None = None
        for attempt in range(max_attempts):
            if attempt:
                found = [
                    d
                    for d in self.find_by_name(name)
                    if str(d.get("id")) not in known_ids
                    and (d.get("metadata") or {}).get("size_bytes", size) == size
                ]
                if found:
                    event("doc.create.recovered", name=name, id=found[0]["id"])
                    return {"id": found[0]["id"], "name": name}
                self.clock.sleep(self.policy.base * 2**attempt)
            try:
                return self.read(
                    "POST",
                    "/v1/convai/knowledge-base/text",
                    shapes.CREATED,
                    body={"text": text, "name": name}
                    | ({"parent_folder_id": parent_folder_id} if parent_folder_id else {}),
                    idempotent=False,
                )
            except (ServerError, TransportError) as exc:
                last = exc
                event(
                    "doc.create.ambiguous",
                    logging.WARNING,
                    name=name,
                    error=exc.code or exc.status,
                    attempt=attempt + 1,
                )
        assert last is not None
        raise last

    # -- folders -----------------------------------------------------------------------------
    def create_folder(self, name: str, parent_folder_id: str | None = None) -> Json:
        body: Json = {"name": name}
        if parent_folder_id:
            body["parent_folder_id"] = parent_folder_id
        return self.read(
            "POST", "/v1/convai/knowledge-base/folder", shapes.CREATED, body=body, idempotent=False
        )

    def move_document(self, doc_id: str, folder_id: str | None) -> None:
        """Into ``folder_id`` (None: the workspace root)."""
        self.request(
            "POST",
            f"/v1/convai/knowledge-base/{quote(doc_id, safe='')}/move",
            body={"move_to": folder_id},
        )

    def update_document(self, doc_id: str, *, name: str, content: str) -> None:
        """A new name and content for a text document (sets both: safe to repeat)."""
        self.request(
            "PATCH",
            f"/v1/convai/knowledge-base/{quote(doc_id, safe='')}",
            body={"name": name, "content": content},
        )

    def compute_index(self, doc_id: str, model: str, *, until: float | None = None) -> Json:
        path = f"/v1/convai/knowledge-base/{quote(doc_id, safe='')}/rag-index"
        return self.read("POST", path, shapes.INDEX, body={"model": model}, until=until)

    def compute_indexes(
        self, doc_ids: Sequence[str], model: str, *, until: float | None = None
    ) -> Json:
        """The batch get-or-create of the RAG indexes of 1 to 100 documents: the answer, each
        value ``{"status": "success", "data": <index>}`` or ``{"status": "failure",
        "error_code", "error_status", "error_message"}`` [spec], keyed by document id [guess:
        nothing public names the key; docs/emulator.md row 31d]. ``until``: no retry past it
        (the index wait's deadline)."""
        items = [{"document_id": d, "create_if_missing": True, "model": model} for d in doc_ids]
        return dict(
            self.request(
                "POST", "/v1/convai/knowledge-base/rag-index", body={"items": items}, until=until
            )
        )

    def list_indexes(self, doc_id: str) -> Json:
        path = f"/v1/convai/knowledge-base/{quote(doc_id, safe='')}/rag-index"
        return self.read("GET", path, shapes.INDEXES)

    def rag_overview(self) -> Json:
        return self.read("GET", "/v1/convai/knowledge-base/rag-index", shapes.OVERVIEW)

    def dependent_agents(self, doc_id: str, cursor: str | None = None) -> Json:
        path = f"/v1/convai/knowledge-base/{quote(doc_id, safe='')}/dependent-agents"
        params = {"cursor": cursor} if cursor else None
        return self.read("GET", path, shapes.DEPENDENTS, params=params)

    def delete_document(self, doc_id: str, *, force: bool = False) -> None:
        params = {"force": "true"} if force else None
        self.request("DELETE", f"/v1/convai/knowledge-base/{quote(doc_id, safe='')}", params=params)
