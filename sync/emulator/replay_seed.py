"""Seeding a replay's emulator from what the cassette saw, and mapping recorded ids to the
emulator's.

:class:`Sightings` reads a segment once: every document, folder and agent its successful
answers (and requests) show, with what they reveal (name, type, size, folder, content, index
statuses, the agent's body). :class:`Seeder` then, before each exchange is replayed, seeds
what that exchange refers to and the emulator does not have yet ("pre-existing": created
before the cassette, by someone else, or by a request whose answer was lost), and maps
recorded ids to the emulator's as documents are created (:meth:`Seeder.learn`). Agents keep
their recorded ids (``seed_agent`` takes one), so names holding an agent id stay true.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sync.emulator.indexes as ix
import sync.emulator.urls as urls
from sync.emulator.agents import DEFAULT_MODEL, EMBEDDING_MODELS, kb_of_body, rag_of
from sync.emulator.backend import Backend
from sync.emulator.replay_cassette import Exchange

KB = urls.API_PREFIX + "/knowledge-base"
FILLER = "Replayed document: its text was not in the cassette. "
DEFAULT_SIZE = 1000  # bytes of a document whose size the cassette never showed


@dataclass
class DocInfo:
    name: str | None = None
    type: str = "text"
    size: int | None = None
    parent: str | None = None
    content: str | None = None
    content_format: str = "markdown"
    first_index: dict[str, str] = field(default_factory=dict)  # model -> first status seen


def params_of(x: Exchange) -> dict[str, str]:
    match = urls.resolve(x.method, x.path)
    return match.params if match.route is not None else {}


def locators(body: Any) -> list[dict[str, Any]]:
    return [
        loc for loc in (kb_of_body(body) if isinstance(body, dict) else []) if isinstance(loc, dict)
    ]


def batch_items(x: Exchange) -> list[dict[str, Any]]:
    """The items of a batch compute (``POST /knowledge-base/rag-index``), else none."""
    if x.method != "POST" or x.path != KB + "/rag-index" or not isinstance(x.request, dict):
        return []
    items = x.request.get("items")
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def index_statuses(x: Exchange, response: Any) -> Iterator[tuple[str, str, str]]:
    """``(doc id, model, status)`` an answer of a compute (POST) or list (GET) of ``.../rag-index``
    shows, or of a batch compute; the doc id as the path (or the batch's request) names it."""
    for item in batch_items(x) if isinstance(response, dict) else []:
        doc = str(item.get("document_id"))
        answer = response.get(doc)
        data = answer.get("data") if isinstance(answer, dict) else None
        if isinstance(data, dict) and isinstance(data.get("status"), str):
            yield doc, str(data.get("model") or item.get("model") or DEFAULT_MODEL), data["status"]
    doc_id = params_of(x).get("doc_id")
    if doc_id is None or not x.path.endswith("/rag-index") or not isinstance(response, dict):
        return
    if x.method == "POST":
        model = (x.request or {}).get("model") if isinstance(x.request, dict) else None
        if isinstance(response.get("status"), str):
            yield doc_id, str(response.get("model") or model or DEFAULT_MODEL), response["status"]
        return
    for idx in response.get("indexes") or []:
        if isinstance(idx, dict) and isinstance(idx.get("status"), str):
            yield doc_id, str(idx.get("model") or DEFAULT_MODEL), idx["status"]


def is_create(x: Exchange) -> bool:
    return x.method == "POST" and x.path in (KB + "/text", KB + "/folder")


class Sightings:
    """What one segment's successful exchanges show of documents, folders and agents."""

    def __init__(self, exchanges: list[Exchange]) -> None:
        self.docs: dict[str, DocInfo] = {}
        self.agents: dict[str, tuple[int, dict[str, Any]]] = {}  # id -> (seq, first body)
        self.created: dict[str, int] = {}  # recorded doc id -> seq of the create
        self.quota: int | None = None
        for x in exchanges:
            if x.ok:
                self._read(x)

    def doc(self, doc_id: str) -> DocInfo:
        return self.docs.setdefault(doc_id, DocInfo())

    def _item(self, item: Any) -> None:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            return
        info = self.doc(item["id"])
        info.name = info.name or (item.get("name") if isinstance(item.get("name"), str) else None)
        info.type = str(item.get("type") or info.type)
        size = (item.get("metadata") or {}).get("size_bytes")
        if info.size is None and isinstance(size, int):
            info.size = size
        if info.parent is None and isinstance(item.get("folder_parent_id"), str):
            info.parent = item["folder_parent_id"]
            if info.parent not in self.docs:
                self.doc(info.parent).type = "folder"
        if isinstance(item.get("content_format"), str):
            info.content_format = item["content_format"]

    def _read(self, x: Exchange) -> None:
        params, resp, req = params_of(x), x.response, x.request
        if is_create(x) and isinstance(resp, dict) and isinstance(resp.get("id"), str):
            self.created.setdefault(resp["id"], x.seq)
            info = self.doc(resp["id"])
            info.type = "folder" if x.path.endswith("/folder") else "text"
            if isinstance(req, dict):
                info.name = info.name or req.get("name")
                info.content = info.content if info.content is not None else req.get("text")
                info.parent = info.parent or req.get("parent_folder_id")
        if x.method == "GET" and x.path == KB and isinstance(resp, dict):
            for item in resp.get("documents") or []:
                self._item(item)
        if "doc_id" in params and x.path.endswith("/content") and isinstance(resp, str):
            info = self.doc(params["doc_id"])
            info.content = info.content if info.content is not None else resp
        elif "doc_id" in params and x.method == "GET" and isinstance(resp, dict):
            self._item(resp)
        for doc_id, model, status in index_statuses(x, resp):
            self.doc(doc_id).first_index.setdefault(model, status)
        agent_id = params.get("agent_id") if x.path.count("/") == 4 else None
        if agent_id and isinstance(resp, dict) and resp.get("conversation_config") is not None:
            self.agents.setdefault(agent_id, (x.seq, resp))
        if x.method == "GET" and x.path == KB + "/rag-index" and isinstance(resp, dict):
            quota = resp.get("total_max_bytes")
            self.quota = self.quota if self.quota is not None else quota
        for loc in locators(resp) + locators(req):
            self._item(loc)
        for folder_id in self._folders(x):
            if folder_id not in self.docs:
                self.doc(folder_id).type = "folder"

    @staticmethod
    def _folders(x: Exchange) -> list[str]:
        """Ids an exchange uses as folders (a filter, a parent, a move's target)."""
        found = [v for k in ("parent_folder_id", "ancestor_folder_id") for v in x.query.get(k, [])]
        req = x.request if isinstance(x.request, dict) else {}
        found += [str(req[k]) for k in ("parent_folder_id", "move_to") if req.get(k)]
        return found

    def refs(self, x: Exchange) -> tuple[list[str], list[str]]:
        """(agent ids, doc ids) a successful exchange names, in its path, request or answer."""
        if not x.ok:
            return [], []
        params = params_of(x)
        agents = [params["agent_id"]] if "agent_id" in params else []
        docs = [params["doc_id"]] if "doc_id" in params else []
        req, resp = x.request, x.response
        docs += self._folders(x)
        if isinstance(req, dict):
            docs += [str(i) for i in req.get("document_ids") or []]
        docs += [str(i.get("document_id")) for i in batch_items(x) if i.get("document_id")]
        docs += [str(loc.get("id")) for loc in locators(req) + locators(resp) if loc.get("id")]
        items: Any = []
        if isinstance(resp, dict):
            items = resp.get("documents") if x.path == KB else [resp] if "doc_id" in params else []
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                docs += [item["id"]]
                if isinstance(item.get("folder_parent_id"), str):
                    docs += [item["folder_parent_id"]]
        return agents, docs


class Seeder:
    """One segment's emulator: seeds what an exchange needs first, maps ids as they appear."""

    def __init__(self, backend: Backend, sightings: Sightings) -> None:
        self.backend, self.seen = backend, sightings
        self.ids: dict[str, str] = {}  # recorded -> emulator (documents, folders, cursors)
        self.models = {DEFAULT_MODEL} | {
            str(rag_of(body).get("embedding_model"))
            for _seq, body in sightings.agents.values()
            if rag_of(body).get("embedding_model") in EMBEDDING_MODELS
        }
        if isinstance(sightings.quota, int):
            backend.set_quota(sightings.quota)

    def sub(self, value: Any) -> Any:
        """``value`` with every recorded id the emulator knows by another id replaced."""
        if isinstance(value, str):
            return self.ids.get(value, value)
        if isinstance(value, list):
            return [self.sub(v) for v in value]
        if isinstance(value, dict):
            return {k: self.sub(v) for k, v in value.items()}
        return value

    def path(self, path: str) -> str:
        return "/".join(self.ids.get(part, part) for part in path.split("/"))

    def prepare(self, x: Exchange) -> None:
        agents, docs = self.seen.refs(x)
        for doc_id in dict.fromkeys(docs):
            self._doc(doc_id, x.seq)
        for agent_id in agents:
            self._agent(agent_id, x.seq)

    def learn(self, x: Exchange, answer: Any) -> None:
        """After the replay of ``x``: recorded ids (created documents, cursors) -> the
        emulator's, from the two answers."""
        rec = x.response
        if not (isinstance(rec, dict) and isinstance(answer, dict)):
            return
        for key in ("id", "next_cursor") if is_create(x) or x.path == KB else ():
            if isinstance(rec.get(key), str) and isinstance(answer.get(key), str):
                self.ids[rec[key]] = answer[key]

    def _pending(self, doc_id: str, seq: int) -> bool:
        """Created by this exchange or a later one: not to be seeded now."""
        return self.seen.created.get(doc_id, -1) >= seq

    def _doc(self, doc_id: str, seq: int, folder: bool = False) -> str | None:
        if doc_id in self.ids:
            return self.ids[doc_id]
        if doc_id in self.backend.docs or self._pending(doc_id, seq):
            return None
        info = self.seen.docs.get(doc_id) or DocInfo()
        parent = self._doc(info.parent, seq, folder=True) if info.parent else None
        name = info.name or doc_id
        if info.type == "folder" or folder:
            new = self.backend.seed_folder(name, parent)
        else:
            new = self.backend.seed_document(
                name,
                _text(info),
                content_format=info.content_format if info.content_format == "html" else "markdown",
                indexed_models=sorted(self._indexed(info)),
                parent_folder_id=parent,
            )
        self.ids[doc_id] = new
        return new

    def _indexed(self, info: DocInfo) -> set[str]:
        """The models a pre-existing document was indexed for: the agents' ones, unless the
        first status seen says otherwise."""
        pending = {m for m, s in info.first_index.items() if s in ix.PENDING}
        return (self.models | set(info.first_index)) - pending

    def _agent(self, agent_id: str, seq: int) -> None:
        if agent_id in self.backend.agents:
            return
        _at, body = self.seen.agents.get(agent_id, (0, {}))
        kb = []
        for loc in locators(body):
            doc = self._doc(str(loc.get("id")), seq) if loc.get("id") else None
            if doc is not None:
                kb.append({**loc, "id": doc})
        rag = rag_of(body)
        model = rag.get("embedding_model")
        agent = body.get("conversation_config", {}).get("agent", {}) if body else {}
        texts = {k: str(agent[k]) for k in ("first_message", "language") if agent.get(k)}
        if isinstance((agent.get("prompt") or {}).get("prompt"), str):
            texts["prompt"] = agent["prompt"]["prompt"]
        self.backend.seed_agent(
            agent_id=agent_id,
            name=str(body.get("name") or "Replayed agent"),
            rag_enabled=bool(rag.get("enabled", True)),
            embedding_model=model if model in EMBEDDING_MODELS else DEFAULT_MODEL,
            knowledge_base=kb,
            **texts,
        )


def _text(info: DocInfo) -> str:
    """The document's text as the cassette showed it (its content, or a create's text), padded
    to the size it showed (a text answer is cut at 2000 characters), or filler."""
    text = info.content or ""
    size = info.size if info.size is not None else (len(text.encode()) or DEFAULT_SIZE)
    missing = size - len(text.encode("utf-8"))
    if missing > 0:
        text += (FILLER * (missing // len(FILLER) + 1))[:missing]
    return text
