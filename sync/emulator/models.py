"""The emulator's model: the fake workspace's state and its domain operations, no HTTP.

:class:`Workspace` holds the documents and folders, their RAG indexes (lifecycle in
:mod:`sync.emulator.indexes`), the agents with their branches and the plan's limits; its
methods raise :mod:`sync.emulator.exceptions` errors. The caller (``Backend``) locks."""

from __future__ import annotations

import copy
import random
import string
from collections import Counter
from collections.abc import Iterator
from typing import Any

import sync.emulator.exceptions as exc
import sync.emulator.indexes as ix
from sync.clock import Clock, FakeClock
from sync.emulator.agents import (
    EMBEDDING_MODELS,
    MAIN_BRANCH_NAME,
    SPEC_DEFAULT_MODEL,
    Agent,
    Branch,
    Version,
    deep_merge,
    kb_of,
    kb_of_body,
    rag_of,
)
from sync.emulator.documents import (
    FOLDER,
    TEXT,
    Doc,
    descendants,
    first_words,
    is_within,
    list_key,
    render_html,
    sort_key,
)
from sync.emulator.indexes import Index, IndexBehaviour
from sync.emulator.retrieval import Settings, Source, retrieve

__all__ = ["Doc", "Workspace", "first_words", "render_html", "sort_key"]

CREATOR_QUOTA = 20 * 1024 * 1024
MAX_DOC_CHARS = 300_000  # [docs] non-enterprise plans: 300k characters per document
MAX_PATCH_ENTRIES = 100  # [field] more entries in one agent PATCH: answered 200, not all kept
BYTES_PER_PAGE = 2000  # [guess] for /agent/{id}/knowledge-base/size
ALNUM = string.ascii_letters + string.digits
LOWER = string.ascii_lowercase + string.digits
RAG_MODEL_LOC: exc.Loc = ["body", "conversation_config", "agent", "prompt", "rag"]


class Workspace:
    """Documents and folders, indexes, agents (with branches) and the plan's limits."""

    def __init__(
        self,
        clock: Clock | None = None,
        quota_bytes: int = CREATOR_QUOTA,
        index_seconds: float = 3.0,
        seed: int | None = None,
        max_chars: int = MAX_DOC_CHARS,
        max_patch_entries: int | None = MAX_PATCH_ENTRIES,
    ) -> None:
        self.clock: Clock = clock if clock is not None else FakeClock()
        self.index_seconds = index_seconds
        self._initial_plan = (quota_bytes, max_chars, max_patch_entries)
        self._rng = random.Random(seed)
        self.reset()

    def reset(self) -> None:
        """Forget every document, index, agent and behaviour; the plan's limits start over."""
        self.docs: dict[str, Doc] = {}
        self.indexes: dict[tuple[str, str], Index] = {}
        self.agents: dict[str, Agent] = {}
        self.behaviours: list[IndexBehaviour] = []
        self.stale: list[tuple[str, str]] = []  # (doc id or name prefix, text retrieval serves)
        self.quota_bytes, self.max_chars, self.max_patch_entries = self._initial_plan
        self.linger_times = 0
        self._lingering: dict[str, dict[str, int]] = {}  # doc id -> agent id -> attempts
        self._seq = 0

    def now(self) -> float:
        return self.clock.now()

    def new_agent_id(self) -> str:
        return "agent_" + self._new_id(28, LOWER)

    def _new_id(self, n: int = 20, alphabet: str = ALNUM) -> str:
        return "".join(self._rng.choice(alphabet) for _ in range(n))

    # ------------------------------------------------------------------ documents

    def create_doc(
        self,
        name: str,
        text: str,
        content_format: str,
        parent_id: str | None = None,
        kind: str = TEXT,
    ) -> Doc:
        if parent_id is not None:
            self.folder(parent_id)
        now = self.now()
        self._seq += 1
        doc_id = self._new_id()
        while doc_id in self.docs:
            doc_id = self._new_id()
        doc = Doc(doc_id, name, text, content_format, now, now, self._seq, kind, parent_id)
        self.docs[doc_id] = doc
        return doc

    def doc(self, doc_id: str) -> Doc:
        doc = self.docs.get(doc_id)
        if doc is None:
            raise exc.DocumentNotFound(doc_id)
        return doc

    def folder(self, folder_id: str) -> Doc:
        """A folder named by ``parent_folder_id`` / ``move_to``: unknown -> 404 like any
        document [guess]; not a folder -> 400 [guess]."""
        doc = self.doc(folder_id)
        if not doc.is_folder:
            raise exc.BadRequest("not_a_folder", f"Document {folder_id} is not a folder.")
        return doc

    def ordered_docs(self) -> list[Doc]:
        return sorted(self.docs.values(), key=lambda d: (d.created_at, d.seq), reverse=True)

    def list_docs(self, q: Any) -> list[Doc]:
        """The listing for a :class:`~sync.emulator.validation.ListQuery`, sorted, from just
        after the item whose sort key is ``q.after``."""
        docs = [d for d in self.docs.values() if not q.types or d.type in q.types]
        if q.search:
            docs = [d for d in docs if d.name.casefold().startswith(q.search.casefold())]
        if q.parent is not None:
            docs = [d for d in docs if d.parent_id == self.folder(q.parent).id]
        if q.ancestor is not None:
            under = {d.id for d in descendants(self.docs, self.folder(q.ancestor).id)}
            docs = [d for d in docs if d.id in under]
        docs.sort(key=lambda d: list_key(d, q), reverse=q.descending)
        if q.after:
            if q.descending:
                return [d for d in docs if list_key(d, q) < q.after]
            return [d for d in docs if list_key(d, q) > q.after]
        return docs

    def update_doc(self, doc: Doc, name: str | None, content: str | None) -> None:
        changed = False
        if isinstance(name, str) and name != doc.name:
            doc.name, changed = name, True
            for branch in self.all_branches():
                for loc in kb_of(branch):
                    if loc["id"] == doc.id:
                        loc["name"] = name
        if isinstance(content, str):
            doc.text, doc.content_format, changed = content, "markdown", True
            for (doc_id, _model), idx in self.indexes.items():
                if doc_id == doc.id:
                    self._start_index(idx, doc)  # [guess] new content: indexes start over
        if changed:
            doc.updated_at = self.now()

    def move(self, doc: Doc, to: str | None) -> None:
        """Into folder ``to`` (``None``: the root); a folder never into itself [guess: 400]."""
        if to is not None and is_within(self.docs, self.folder(to), doc.id):
            raise exc.BadRequest("invalid_move", f"Cannot move {doc.id} into itself.")
        doc.parent_id, doc.updated_at = to, self.now()

    def delete_doc(self, doc: Doc, force: bool) -> None:
        """Without ``force``, refused while an agent (or a lingering one) depends on it, or a
        folder is not empty [guess]; with it, a folder goes with everything under it [spec]."""
        gone = [doc, *descendants(self.docs, doc.id)] if doc.is_folder else [doc]
        if not force:
            lingering = self._lingering.get(doc.id, {})
            dependents = self.dependent_ids(doc.id)
            for agent_id, left in list(lingering.items()):
                lingering[agent_id] = left - 1
            if dependents:
                raise exc.DocumentHasDependentAgents(doc.id, len(dependents))
            if len(gone) > 1:
                raise exc.BadRequest("folder_not_empty", f"Folder {doc.id} is not empty.")
        ids = {d.id for d in gone}
        for branch in self.all_branches():
            kb = kb_of(branch)
            kept = [loc for loc in kb if loc["id"] not in ids]
            if len(kept) != len(kb):
                kb[:] = kept
                self.commit(branch)
        for d in gone:
            del self.docs[d.id]
            self._lingering.pop(d.id, None)
        for k in [k for k in self.indexes if k[0] in ids]:
            del self.indexes[k]

    def dependent_branches(self, doc_id: str) -> list[tuple[Agent, Branch]]:
        """Every (agent, branch) whose config uses the doc, archived branches too [guess];
        a lingering agent counts with its main branch."""
        found = [
            (a, b)
            for a in self.agents.values()
            for b in a.branches.values()
            if any(loc["id"] == doc_id for loc in kb_of(b))
        ]
        for agent_id, left in self._lingering.get(doc_id, {}).items():
            agent = self.agents.get(agent_id)
            if left > 0 and agent is not None and (agent, agent.main) not in found:
                found.append((agent, agent.main))
        return found

    def dependent_ids(self, doc_id: str) -> list[str]:
        return list(dict.fromkeys(a.agent_id for a, _b in self.dependent_branches(doc_id)))

    # ------------------------------------------------------------------ indexes

    def index_state(self, idx: Index) -> tuple[str, float]:
        def decide() -> str:
            doc = self.docs[idx.doc_id]
            return ix.decide_fate(self.behaviours, doc.id, doc.name)

        return idx.observe(self.now(), self.index_seconds, decide)

    def _size(self, idx: Index) -> int:
        return doc.size_bytes if (doc := self.docs.get(idx.doc_id)) else 0

    def index_used(self, idx: Index) -> int:
        return ix.used_bytes(self.index_state(idx)[0], self._size(idx))

    def total_used(self) -> int:
        return sum(self.index_used(i) for i in self.indexes.values())

    def usage_by_model(self) -> dict[str, int]:
        """Bytes used per model, for the models that use any."""
        per_model: Counter[str] = Counter()
        for idx in self.indexes.values():
            per_model[idx.model] += self.index_used(idx)
        return {m: n for m, n in per_model.items() if n}

    def indexes_of(self, doc_id: str) -> list[Index]:
        return [i for (d, _m), i in self.indexes.items() if d == doc_id]

    def succeeded(self, doc_id: str, model: str) -> bool:
        idx = self.indexes.get((doc_id, model))
        return idx is not None and self.index_state(idx)[0] == ix.SUCCEEDED

    def _start_index(self, idx: Index, doc: Doc) -> None:
        def room() -> int:  # an upper bound of the others' use (nothing observed), or exact
            rest = [i for i in self.indexes.values() if i is not idx]
            left = self.quota_bytes - sum(ix.at_most(i.terminal, self._size(i)) for i in rest)
            exact = doc.size_bytes > left  # near the limit only: each index observed
            return self.quota_bytes - sum(self.index_used(i) for i in rest) if exact else left

        idx.start(self.now(), doc.size_bytes, room, folder=doc.type == FOLDER)
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

    # ------------------------------------------------------------------ agents and branches

    def agent(self, agent_id: str) -> Agent:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise exc.AgentNotFound(agent_id)
        return agent

    def branch(self, agent: Agent, branch_id: str | None) -> Branch:
        """The agent's branch ``branch_id`` (``None``: main); unknown -> 404 [spec: optional]."""
        branch = agent.branch(branch_id)
        if branch is None:
            raise exc.BranchNotFound(str(branch_id))
        return branch

    def all_branches(self) -> Iterator[Branch]:
        for agent in self.agents.values():
            yield from agent.branches.values()

    def new_agent(self, agent_id: str, body: dict[str, Any]) -> Agent:
        """A new agent on its main branch, one version in [spec: every agent is versioned]."""
        now = self.now()
        main = Branch(self.new_branch_id(), agent_id, MAIN_BRANCH_NAME, "", body, now)
        agent = Agent(agent_id, now, {main.id: main}, main.id)
        self.agents[agent_id] = agent
        self.commit(main)
        return agent

    def new_branch_id(self) -> str:
        return "agtbranch_" + self._new_id(28, LOWER)

    def commit(self, branch: Branch, description: str = "", **parents: str | None) -> Version:
        """A new version on ``branch`` holding its body as it is now."""
        version = Version(
            "agtvrsn_" + self._new_id(28, LOWER),
            branch.id,
            len(branch.versions) + 1,
            self.now(),
            copy.deepcopy(branch.body),
            description,
            {"in_branch_parent_id": branch.version_id if branch.versions else None, **parents},
        )
        branch.versions.append(version)
        return version

    def update_agent(
        self,
        agent: Agent,
        patch: dict[str, Any],
        new_kb: list[dict[str, Any]] | None,
        branch: Branch | None = None,
    ) -> None:
        """PATCH (of main, or of ``branch``): merge; check the new docs, the body; commit."""
        branch = branch or agent.main
        merged = deep_merge(copy.deepcopy(branch.body), patch)
        prompt = merged.setdefault("conversation_config", {}).setdefault("agent", {})
        prompt = prompt.setdefault("prompt", {})
        if new_kb is not None:
            for loc_item in new_kb:
                self.doc(loc_item["id"])
            limit = self.max_patch_entries
            prompt["knowledge_base"] = new_kb if limit is None else new_kb[:limit]
        self.check_body(merged)
        self.relink(agent, branch, {loc["id"] for loc in prompt.get("knowledge_base") or []})
        branch.body = merged
        self.commit(branch)

    def check_body(self, body: dict[str, Any]) -> None:
        """An agent body about to be stored: a known embedding model; every ``auto`` doc
        indexed for it when RAG is on; no doc over the plan's character limit [field: such a
        doc uploads but the PATCH fails with ``rag_index_not_ready``]."""
        rag = rag_of(body)
        model = rag.get("embedding_model", SPEC_DEFAULT_MODEL)
        if model not in EMBEDDING_MODELS:
            item = exc.enum_error([*RAG_MODEL_LOC, "embedding_model"], EMBEDDING_MODELS, model)
            raise exc.InputInvalid(item["msg"], item["loc"])
        bad = [
            loc["id"]
            for loc in kb_of_body(body)
            if loc["id"] in self.docs
            and (
                len(self.docs[loc["id"]].text) > self.max_chars
                or rag.get("enabled")
                and loc.get("usage_mode", "auto") == "auto"
                and not self.succeeded(loc["id"], model)
            )
        ]
        if bad:
            raise exc.RagIndexNotReady(model, bad)

    def relink(self, agent: Agent, branch: Branch, new_ids: set[str]) -> None:
        """Docs leaving the agent's main branch may linger as dependents; docs (re)joining
        it do not."""
        if branch is not agent.main:
            return
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

    # ------------------------------------------------------------------ retrieval

    def rag_chunks(
        self, branch: Branch, query: str, model: str, settings: Settings
    ) -> list[dict[str, Any]]:
        """Lexical retrieval [guess] over the branch's ``auto`` docs with a succeeded index for
        ``model`` (see :mod:`sync.emulator.retrieval`), in the API's chunk shape."""
        return retrieve(query, self._retrievable(branch, model), settings)

    def served_text(self, doc: Doc) -> str:
        """What retrieval serves for ``doc``: its text, or a stale text a test set."""
        rule = next((t for m, t in self.stale if m == doc.id or doc.name.startswith(m)), None)
        return doc.text if rule is None else rule

    def _retrievable(self, branch: Branch, model: str) -> Iterator[Source]:
        for loc in kb_of(branch):
            doc = self.docs.get(loc["id"])
            if doc is None or loc.get("usage_mode", "auto") != "auto":
                continue
            if self.succeeded(doc.id, model):
                yield Source(doc.id, doc.name, self.served_text(doc), doc.content_format, doc.type)
