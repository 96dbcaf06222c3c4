"""The emulator's model: the fake workspace's state and its domain operations, no HTTP.

:class:`Workspace` holds the documents, their RAG indexes (lifecycle in
:mod:`sync.emulator.indexes`), the agents and the quota. Its domain methods raise
:mod:`sync.emulator.exceptions` errors; :mod:`sync.emulator.responses` turns requests into
calls on them. Nothing here locks: the caller (:class:`~sync.emulator.backend.Backend`)
holds its lock.
"""

from __future__ import annotations

import copy
import html
import random
import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sync.emulator.exceptions as exc
import sync.emulator.indexes as ix
from sync.clock import Clock, FakeClock
from sync.emulator.agents import (
    EMBEDDING_MODELS,
    SPEC_DEFAULT_MODEL,
    Agent,
    deep_merge,
    kb_of,
)
from sync.emulator.indexes import Index, IndexBehaviour
from sync.emulator.retrieval import RAG_QUERY_TOP, paragraphs, retrieve

CREATOR_QUOTA = 20 * 1024 * 1024
BYTES_PER_PAGE = 2000  # [guess] for /agent/{id}/knowledge-base/size
ALNUM = string.ascii_letters + string.digits
RAG_MODEL_LOC: exc.Loc = ["body", "conversation_config", "agent", "prompt", "rag"]


@dataclass
class Doc:
    id: str
    name: str
    text: str
    content_format: str
    created_at: float
    updated_at: float
    seq: int

    @property
    def size_bytes(self) -> int:
        return len(self.text.encode("utf-8"))

    @property
    def html(self) -> str:
        return render_html(self.text)

    def content(self) -> str:
        """What GET .../content returns: the text for markdown docs, HTML for legacy ones."""
        return self.text if self.content_format == "markdown" else self.html


def render_html(text: str) -> str:
    """The legacy HTML rendering [guess]: one escaped ``<p>`` per blank-line separated block."""
    return "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs(text))


def first_words(text: str, words: int = 6, limit: int = 60) -> str:
    """The default name of a document created without one [guess]."""
    name = " ".join(text.split()[:words])[:limit].strip()
    return name or "Untitled document"


def sort_key(doc: Doc, sort_by: str) -> list[Any]:
    """A document's place in a listing sorted by ``sort_by`` (ties by creation order)."""
    primary: Any = {
        "name": doc.name,
        "created_at": doc.created_at,
        "updated_at": doc.updated_at,
        "size": doc.size_bytes,
    }[sort_by]
    return [primary, doc.seq]


class Workspace:
    """Documents, indexes, agents and the RAG quota of one fake workspace."""

    def __init__(
        self,
        clock: Clock | None = None,
        quota_bytes: int = CREATOR_QUOTA,
        index_seconds: float = 3.0,
        seed: int | None = None,
    ) -> None:
        self.clock: Clock = clock if clock is not None else FakeClock()
        self.index_seconds = index_seconds
        self._initial_quota = quota_bytes
        self._rng = random.Random(seed)
        self.reset()

    def reset(self) -> None:
        """Forget every document, index, agent and index behaviour; the quota starts over."""
        self.docs: dict[str, Doc] = {}
        self.indexes: dict[tuple[str, str], Index] = {}
        self.agents: dict[str, Agent] = {}
        self.behaviours: list[IndexBehaviour] = []
        self.quota_bytes = self._initial_quota
        self.linger_times = 0
        self._lingering: dict[str, dict[str, int]] = {}  # doc id -> agent id -> attempts
        self._seq = 0

    def now(self) -> float:
        return self.clock.now()

    def new_agent_id(self) -> str:
        return "agent_" + self._new_id(26, string.ascii_lowercase + string.digits)

    def _new_id(self, n: int = 20, alphabet: str = ALNUM) -> str:
        return "".join(self._rng.choice(alphabet) for _ in range(n))

    # ------------------------------------------------------------------ documents

    def create_doc(self, name: str, text: str, content_format: str) -> Doc:
        now = self.now()
        self._seq += 1
        doc_id = self._new_id()
        while doc_id in self.docs:
            doc_id = self._new_id()
        doc = Doc(doc_id, name, text, content_format, now, now, self._seq)
        self.docs[doc_id] = doc
        return doc

    def doc(self, doc_id: str) -> Doc:
        doc = self.docs.get(doc_id)
        if doc is None:
            raise exc.DocumentNotFound(doc_id)
        return doc

    def ordered_docs(self) -> list[Doc]:
        return sorted(self.docs.values(), key=lambda d: (d.created_at, d.seq), reverse=True)

    def list_docs(
        self, types: list[str], search: str | None, sort_by: str, descending: bool, after: Any
    ) -> list[Doc]:
        """The listing, sorted, from just after the item whose sort key is ``after``."""
        docs = [] if types and "text" not in types else list(self.docs.values())
        if search:
            docs = [d for d in docs if d.name.casefold().startswith(search.casefold())]
        docs.sort(key=lambda d: sort_key(d, sort_by), reverse=descending)
        if after:
            if descending:
                return [d for d in docs if sort_key(d, sort_by) < after]
            return [d for d in docs if sort_key(d, sort_by) > after]
        return docs

    def update_doc(self, doc: Doc, name: str | None, content: str | None) -> None:
        changed = False
        if isinstance(name, str) and name != doc.name:
            doc.name, changed = name, True
            for agent in self.agents.values():
                for loc in kb_of(agent):
                    if loc["id"] == doc.id:
                        loc["name"] = name
        if isinstance(content, str):
            doc.text, doc.content_format, changed = content, "markdown", True
            for (doc_id, _model), idx in self.indexes.items():
                if doc_id == doc.id:
                    self._start_index(idx, doc)  # [guess] new content: indexes start over
        if changed:
            doc.updated_at = self.now()

    def delete_doc(self, doc: Doc, force: bool) -> None:
        """Without ``force``, refused while an agent (or a lingering one) depends on it."""
        if not force:
            lingering = self._lingering.get(doc.id, {})
            dependents = self.dependent_ids(doc.id)
            for agent_id, left in list(lingering.items()):
                lingering[agent_id] = left - 1
            if dependents:
                raise exc.DocumentHasDependentAgents(doc.id, len(dependents))
        for agent in self.agents.values():
            kb = kb_of(agent)
            kept = [loc for loc in kb if loc["id"] != doc.id]
            if len(kept) != len(kb):
                kb[:] = kept
                self._bump(agent)
        del self.docs[doc.id]
        self._lingering.pop(doc.id, None)
        for k in [k for k in self.indexes if k[0] == doc.id]:
            del self.indexes[k]

    def dependent_ids(self, doc_id: str) -> list[str]:
        ids = [
            a.agent_id for a in self.agents.values() if any(loc["id"] == doc_id for loc in kb_of(a))
        ]
        for agent_id, left in self._lingering.get(doc_id, {}).items():
            if left > 0 and agent_id not in ids and agent_id in self.agents:
                ids.append(agent_id)
        return ids

    # ------------------------------------------------------------------ indexes

    def index_state(self, idx: Index) -> tuple[str, float]:
        def decide() -> str:
            doc = self.docs[idx.doc_id]
            return ix.decide_fate(self.behaviours, doc.id, doc.name)

        return idx.observe(self.now(), self.index_seconds, decide)

    def index_used(self, idx: Index) -> int:
        status = self.index_state(idx)[0]
        doc = self.docs.get(idx.doc_id)
        return ix.used_bytes(status, doc.size_bytes if doc else 0)

    def total_used(self) -> int:
        return sum(self.index_used(i) for i in self.indexes.values())

    def usage_by_model(self) -> dict[str, int]:
        """Bytes used per model, for the models that use any."""
        per_model: dict[str, int] = {}
        for idx in self.indexes.values():
            used = self.index_used(idx)
            if used:
                per_model[idx.model] = per_model.get(idx.model, 0) + used
        return per_model

    def indexes_of(self, doc_id: str) -> list[Index]:
        return [i for (d, _m), i in self.indexes.items() if d == doc_id]

    def succeeded(self, doc_id: str, model: str) -> bool:
        idx = self.indexes.get((doc_id, model))
        return idx is not None and self.index_state(idx)[0] == ix.SUCCEEDED

    def _start_index(self, idx: Index, doc: Doc) -> None:
        def room() -> int:
            others = sum(self.index_used(i) for i in self.indexes.values() if i is not idx)
            return self.quota_bytes - others

        idx.start(self.now(), doc.size_bytes, room)
        if idx.terminal is None and self.index_seconds <= 0:
            self.index_state(idx)

    def compute_index(self, doc: Doc, model: str) -> Index:
        """Start the (doc, model) index, or restart it after ``failed`` / quota refusal."""
        idx = self.indexes.get((doc.id, model))
        if idx is None:
            idx = Index(self._new_id(), doc.id, model, self.now())
            self.indexes[(doc.id, model)] = idx
            self._start_index(idx, doc)
        elif idx.terminal in ix.RESTARTABLE:
            # [guess] computing again restarts a failed index, once a caller has seen it fail
            # (the call that first finds it failed reports `failed`)
            self._start_index(idx, doc)
        return idx

    # ------------------------------------------------------------------ agents

    @staticmethod
    def _kb(agent: Agent) -> list[dict[str, Any]]:
        return kb_of(agent)

    def agent(self, agent_id: str) -> Agent:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise exc.AgentNotFound(agent_id)
        return agent

    def _bump(self, agent: Agent) -> None:
        agent.version += 1
        agent.updated_at = self.now()

    def update_agent(
        self, agent: Agent, patch: dict[str, Any], new_kb: list[dict[str, Any]] | None
    ) -> None:
        """PATCH: merge; check the embedding model, the new docs, readiness; then commit."""
        merged = deep_merge(copy.deepcopy(agent.body), patch)
        prompt = merged.get("conversation_config", {}).get("agent", {}).get("prompt", {})
        if new_kb is not None:
            prompt["knowledge_base"] = new_kb
        rag = prompt.get("rag") if isinstance(prompt.get("rag"), dict) else {}
        model = rag.get("embedding_model", SPEC_DEFAULT_MODEL)
        if model not in EMBEDDING_MODELS:
            loc: exc.Loc = [*RAG_MODEL_LOC, "embedding_model"]
            raise exc.ValidationFailed(exc.enum_error(loc, EMBEDDING_MODELS, model))
        kb = prompt.get("knowledge_base") or []
        for loc_item in new_kb or []:
            self.doc(loc_item["id"])
        if rag.get("enabled"):
            not_ready = [
                loc_item["id"]
                for loc_item in kb
                if loc_item.get("usage_mode", "auto") == "auto"
                and loc_item["id"] in self.docs
                and not self.succeeded(loc_item["id"], model)
            ]
            if not_ready:
                raise exc.RagIndexNotReady(model, not_ready)
        self._relink(agent, {loc_item["id"] for loc_item in kb})
        agent.body = merged
        self._bump(agent)

    def _relink(self, agent: Agent, new_ids: set[str]) -> None:
        """Docs leaving the agent may linger as dependents; docs (re)joining it do not."""
        old_ids = {loc["id"] for loc in kb_of(agent)}
        for doc_id in old_ids - new_ids:
            if self.linger_times > 0:
                self._lingering.setdefault(doc_id, {})[agent.agent_id] = self.linger_times
        for doc_id in new_ids:
            self._lingering.get(doc_id, {}).pop(agent.agent_id, None)

    def kb_bytes(self, agent: Agent) -> int:
        return sum(
            self.docs[loc["id"]].size_bytes for loc in kb_of(agent) if loc["id"] in self.docs
        )

    def retrieve(
        self, agent_id: str, query: str, model: str, limit: int = RAG_QUERY_TOP
    ) -> list[dict[str, Any]]:
        """Lexical retrieval [guess] over the agent's ``auto`` docs with a succeeded index for
        ``model`` (see :mod:`sync.emulator.retrieval`)."""
        return retrieve(query, self._retrievable(agent_id, model), limit)

    def _retrievable(self, agent_id: str, model: str) -> Iterator[tuple[str, str, str]]:
        for loc in kb_of(self.agents[agent_id]):
            doc = self.docs.get(loc["id"])
            if doc is None or loc.get("usage_mode", "auto") != "auto":
                continue
            if self.succeeded(doc.id, model):
                yield doc.id, doc.name, doc.text
