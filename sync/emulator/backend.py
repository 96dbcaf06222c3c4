"""The emulator's front door: :class:`Backend`, the fake workspace plus faults and a call log.

Both fronts (:mod:`sync.emulator.inprocess` and :mod:`sync.emulator.server`) only call
:meth:`Backend.handle`: control requests go to :mod:`sync.emulator.control`, API requests
through the fault rules, routing (:mod:`sync.emulator.urls`), the API key and a handler of
:mod:`sync.emulator.responses`, and into the call log. Everything a test needs to seed state,
inject faults or inspect what happened is a plain method here (and, for servers in another
process, a control endpoint driven by :class:`sync.emulator.remote.RemoteEmulator`).
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import sync.emulator.branching as branching
import sync.emulator.control as control
import sync.emulator.indexes as ix
import sync.emulator.urls as urls
import sync.emulator.validation as validation
from sync.clock import Clock
from sync.emulator.admission import Admission
from sync.emulator.agents import DEFAULT_MODEL, EMBEDDING_MODELS, Agent, agent_body, kb_of
from sync.emulator.control import Controlled
from sync.emulator.exceptions import ControlError, EmulatorError, MethodNotAllowed, RouteNotFound
from sync.emulator.faults import FaultRule, answer, refusal
from sync.emulator.indexes import IndexBehaviour
from sync.emulator.models import CREATOR_QUOTA, MAX_DOC_CHARS, MAX_PATCH_ENTRIES, Workspace
from sync.emulator.responses import agent_view, index_view
from sync.emulator.retrieval import Settings
from sync.emulator.wire import Call, Request, Response, maybe_json


class Backend(Workspace):
    """The whole fake workspace. Every public method takes the one lock; safe across threads."""

    def __init__(
        self,
        api_key: str | None = "test-key",
        clock: Clock | None = None,
        quota_bytes: int = CREATOR_QUOTA,
        index_seconds: float = 3.0,
        seed: int | None = None,
        max_chars: int = MAX_DOC_CHARS,
        max_patch_entries: int | None = MAX_PATCH_ENTRIES,
    ) -> None:
        self.api_key = api_key
        self._lock = threading.RLock()
        self.after_request: list[Callable[[Backend, Call], None]] = []
        self.admission = Admission()  # the in-flight limit (both fronts count through it)
        super().__init__(clock, quota_bytes, index_seconds, seed, max_chars, max_patch_entries)

    # ------------------------------------------------------------------ state management

    def reset(self) -> None:
        """Forget every document, index, agent, fault, behaviour and call. Hooks stay."""
        with self._lock:
            super().reset()
            self.faults: list[FaultRule] = []
            self.calls: list[Call] = []
            self.admission.reset()

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def advance(self, seconds: float) -> float:
        """Move the clock (FakeClock, or SystemClock's offset) forward; returns the new now."""
        advance = getattr(self.clock, "advance", None)
        if advance is None:
            raise TypeError(f"{type(self.clock).__name__} cannot be advanced")
        advance(seconds)
        return self.clock.now()

    def clear_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def add_fault(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self.faults.append(rule)
            return rule

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def set_concurrency_limit(self, limit: int | None) -> None:
        """At most ``limit`` API requests in flight at once; more are answered 429
        ``too_many_concurrent_requests`` (:mod:`sync.emulator.admission`). ``None``: no limit."""
        self.admission.set_limit(limit)

    # ------------------------------------------------------------------ settings

    def linger(self, times: int) -> None:
        """From now on, a doc detached from an agent keeps that agent as a dependent (blocking
        non-force deletes) for its next ``times`` delete attempts. ``0`` turns it off."""
        with self._lock:
            self.linger_times = max(0, int(times))

    def set_index_behaviour(self, match: str, behaviour: str, times: int | None = None) -> None:
        """``match``: a doc id or a name prefix (docs created later count too).

        ``failed``: the index fails when it would succeed, for ``times`` computes; ``stuck``:
        stays ``processing`` (for ``times`` computes); ``succeed``: normal (overrides older
        rules for the same docs). Later rules win."""
        if behaviour not in ix.BEHAVIOURS:
            raise ValueError(f"unknown index behaviour {behaviour!r}")
        with self._lock:
            self.behaviours.insert(0, IndexBehaviour(match, behaviour, times))

    def set_quota(self, total_max_bytes: int) -> None:
        with self._lock:
            self.quota_bytes = int(total_max_bytes)

    def set_plan(
        self,
        max_chars: int | None = None,
        max_patch_entries: int | None | str = "keep",
        total_max_bytes: int | None = None,
    ) -> None:
        """The plan's limits: characters per attachable document, entries one agent PATCH
        keeps (``None``: all), the RAG quota. Arguments left out keep their value."""
        with self._lock:
            if max_chars is not None:
                self.max_chars = int(max_chars)
            if max_patch_entries != "keep":
                self.max_patch_entries = (
                    None if max_patch_entries is None else int(max_patch_entries)
                )
            if total_max_bytes is not None:
                self.quota_bytes = int(total_max_bytes)

    def serve_stale(self, match: str, text: str | None) -> None:
        """From now on retrieval (``rag-query``) serves ``text`` as the content of the docs
        ``match`` names (an id or a name prefix), as an index built on an old version would;
        ``None`` stops it. The document itself (GET, ``/content``) is unchanged."""
        with self._lock:
            self.stale = [(m, t) for m, t in self.stale if m != match]
            if text is not None:
                self.stale.insert(0, (match, text))

    # ------------------------------------------------------------------ seeding

    def seed_agent(
        self,
        agent_id: str | None = None,
        name: str = "Support agent",
        rag_enabled: bool = True,
        embedding_model: str = DEFAULT_MODEL,
        knowledge_base: list[dict[str, Any]] | None = None,
        prompt: str = "You are a helpful support agent. Answer from the knowledge base.",
        first_message: str = "Hello! How can I help you today?",
        language: str = "en",
    ) -> str:
        if embedding_model not in EMBEDDING_MODELS:
            raise ValueError(f"unknown embedding model {embedding_model!r}")
        with self._lock:
            agent_id = agent_id or self.new_agent_id()
            locators = [dict(loc) for loc in knowledge_base or []]
            for loc in locators:
                loc.setdefault("usage_mode", "auto")
                loc.setdefault("type", "text")
            body = agent_body(
                agent_id,
                name,
                rag_enabled,
                embedding_model,
                locators,
                prompt,
                first_message,
                language,
            )
            self.new_agent(agent_id, body)
            return agent_id

    def seed_document(
        self,
        name: str,
        text: str,
        content_format: str = "markdown",
        indexed_models: Iterable[str] = (DEFAULT_MODEL,),
        attach_to: Iterable[str] = (),
        usage_mode: str = "auto",
        parent_folder_id: str | None = None,
    ) -> str:
        """A document as if uploaded earlier: its indexes are already finished (``succeeded``,
        or ``document_too_small`` / ``rag_limit_exceeded`` when that is what they would be)."""
        if content_format not in ("markdown", "html"):
            raise ValueError("content_format must be markdown or html")
        with self._lock:
            doc = self.create_doc(name, text, content_format, parent_folder_id)
            for model in indexed_models:
                self.compute_index(doc, model).finish()
            for agent_id in attach_to:
                self.attach(agent_id, doc.id, usage_mode)
            return doc.id

    def seed_folder(self, name: str, parent_folder_id: str | None = None) -> str:
        with self._lock:
            return self.create_doc(name, "", "markdown", parent_folder_id, kind="folder").id

    def seed_branch(self, agent_id: str, name: str, description: str = "") -> str:
        """A branch of the agent from main's latest version, as the API creates one; its id."""
        with self._lock:
            agent = self.agents[agent_id]
            data = {"parent_version_id": agent.version_id, "name": name, "description": description}
            branch, _version = branching.create_branch(self, agent, data, None)
            return branch.id

    def attach(
        self, agent_id: str, doc_id: str, usage_mode: str = "auto", branch_id: str | None = None
    ) -> None:
        """Put a doc on an agent (its main branch, or ``branch_id``) directly: no readiness
        check, a new version."""
        with self._lock:
            branch = self.branch(self.agents[agent_id], branch_id)
            doc = self.docs[doc_id]
            kb = kb_of(branch)
            kb[:] = [loc for loc in kb if loc["id"] != doc_id]
            kb.append({"type": doc.type, "name": doc.name, "id": doc.id, "usage_mode": usage_mode})
            self.commit(branch)

    # ------------------------------------------------------------------ inspection

    def agent_kb(self, agent_id: str, branch_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(kb_of(self.branch(self.agents[agent_id], branch_id)))

    def agent_version(self, agent_id: str) -> int:
        with self._lock:
            return self.agents[agent_id].version

    def index_status(self, doc_id: str, model: str = DEFAULT_MODEL) -> str | None:
        with self._lock:
            idx = self.indexes.get((doc_id, model))
            return None if idx is None else self.index_state(idx)[0]

    def used_bytes(self) -> int:
        with self._lock:
            return self.total_used()

    def dependents(self, doc_id: str) -> list[str]:
        with self._lock:
            return self.dependent_ids(doc_id)

    def agent_json(self, agent_id: str, branch_id: str | None = None) -> dict[str, Any]:
        with self._lock:
            agent = self.agents[agent_id]
            view: dict[str, Any] = agent_view(agent, self.branch(agent, branch_id))
            return view

    def retrieve(self, agent_id: str, query: str, model: str, limit: int = 5) -> list[Any]:
        """Inspection, not the wire: the main branch's best chunks as ``{document_id,
        document_name, content, score}`` (for callers written before the wire shape)."""
        with self._lock:
            settings = Settings(limit, 0.9999, 10**9)
            chunks = self.rag_chunks(self.agents[agent_id].main, query, model, settings)
            return [
                {
                    "document_id": c["document_id"],
                    "document_name": c["document_name"],
                    "content": c["text"],
                    "score": round(1.0 - c["vector_distance"], 4),
                }
                for c in chunks
            ]

    def state(self) -> dict[str, Any]:
        """Everything, JSON-ready: docs (with text), indexes, agents, quota, faults."""
        with self._lock:
            return {
                "now": self.now(),
                "documents": [
                    {
                        "id": d.id,
                        "name": d.name,
                        "text": d.text,
                        "content_format": d.content_format,
                        "size_bytes": d.size_bytes,
                        "created_at": d.created_at,
                        "updated_at": d.updated_at,
                        "dependent_agents": self.dependent_ids(d.id),
                        "type": d.type,
                        "folder_parent_id": d.parent_id,
                    }
                    for d in self.ordered_docs()
                ],
                "indexes": [
                    {"document_id": i.doc_id, **index_view(self, i)} for i in self.indexes.values()
                ],
                "agents": [self._agent_state(a) for a in self.agents.values()],
                "quota": {
                    "total_used_bytes": self.used_bytes(),
                    "total_max_bytes": self.quota_bytes,
                },
                "faults": [f.to_dict() for f in self.faults],
                "concurrency": self.admission.state(),
                "plan": {"max_chars": self.max_chars, "max_patch_entries": self.max_patch_entries},
                "stale_retrieval": [{"match": m, "text": t} for m, t in self.stale],
                "linger_times": self.linger_times,
            }

    def _agent_state(self, agent: Agent) -> dict[str, Any]:
        return {
            "agent_id": agent.agent_id,
            "version": agent.version,
            "knowledge_base": copy.deepcopy(kb_of(agent)),
            "agent": agent_view(agent),
            "branches": [
                {"id": b.id, "name": b.name, "knowledge_base": copy.deepcopy(kb_of(b))}
                for b in agent.branches.values()
            ],
        }

    # ------------------------------------------------------------------ the entry point

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        *,
        over_limit: bool = False,
    ) -> Response:
        """Answer one request (API or control); the only entry the fronts use.
        ``over_limit``: the front did not admit it (:mod:`sync.emulator.admission`)."""
        hdrs = {k.lower(): v for k, v in (headers or {}).items()}
        req = Request(method.upper(), path, {}, query or {}, hdrs, body or b"", "")
        if urls.is_control(path):
            return self._control(req)
        req.request_id = uuid.uuid4().hex
        with self._lock:
            if over_limit:
                resp, faulted = refusal(self.faults, req), True
            else:
                resp, faulted = answer(self.faults, req, self._dispatch)
            resp.headers["request-id"] = req.request_id
            call = self._record(req, resp, faulted=faulted)
            for hook in list(self.after_request):
                hook(self, call)
            return resp

    def _control(self, req: Request) -> Response:
        """A control request: never faulted, never logged, no API key."""
        target: Controlled = self
        try:
            req.data = control.parse_body(req.body)
            match = urls.resolve(req.method, req.path)
            if match.route is None:
                return control.not_found(req.method, req.path)
            req.params = match.params
            result = match.route.handler(target, req)
        except (ControlError, ValueError, TypeError, KeyError) as err:
            return control.error_response(err)
        return Response.of_json(200, result)

    def _dispatch(self, req: Request) -> Response:
        """Routing first (404, 405), then the API key (401), then the handler."""
        workspace: Workspace = self
        try:
            match = urls.resolve(req.method, req.path)
            if match.route is None:
                raise MethodNotAllowed() if match.path_known else RouteNotFound()
            validation.check_api_key(req.headers, self.api_key)
            req.params = match.params
            resp: Response = match.route.handler(workspace, req)
            return resp
        except EmulatorError as err:
            return err.response(req.request_id)

    def _record(self, req: Request, resp: Response, faulted: bool) -> Call:
        is_json = "json" in resp.content_type
        call = Call(
            method=req.method,
            path=req.path,
            query={k: list(v) for k, v in req.query.items()},
            status=resp.status,
            request_json=maybe_json(req.body),
            response_json=maybe_json(resp.body) if is_json else None,
            dropped=resp.drop_connection,
            at=self.now(),
            request_id=req.request_id,
            fault=faulted,
            content_type=resp.content_type,
            response_text=None if is_json else resp.body.decode("utf-8", "replace"),
        )
        self.calls.append(call)
        return call
