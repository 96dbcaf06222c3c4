"""The emulator's model: a stateful, HTTP-free fake of the ElevenLabs knowledge-base API.

Both fronts (:mod:`sync.emulator.inprocess` and :mod:`sync.emulator.server`) only call
:meth:`Backend.handle`. Everything a test needs to seed state, inject faults or inspect what
happened is a plain method here (and, for servers in another process, a control endpoint under
``/_emulator/`` driven by :class:`sync.emulator.remote.RemoteEmulator`).
"""

from __future__ import annotations

import base64
import binascii
import copy
import html
import json
import random
import re
import string
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from sync.clock import Clock, FakeClock
from sync.emulator.faults import FaultRule

API_PREFIX = "/v1/convai"
CONTROL_PREFIX = "/_emulator"
EMBEDDING_MODELS = ("e5_mistral_7b_instruct", "multilingual_e5_large_instruct")
DEFAULT_MODEL = "multilingual_e5_large_instruct"
DOC_TYPES = ("file", "url", "text", "folder")
USAGE_MODES = ("prompt", "auto")
PENDING = ("new", "created", "processing")
MIN_INDEX_BYTES = 500
BYTES_PER_PAGE = 2000  # [guess] for /agent/{id}/knowledge-base/size
CREATED_FRACTION = 0.1  # [guess] share of index_seconds an index spends in `created`
RAG_QUERY_TOP = 5
CREATOR_QUOTA = 20 * 1024 * 1024
OWNER = {
    "is_creator": True,
    "creator_name": "Emulator User",
    "creator_email": "emulator@example.com",
    "role": "admin",
}
JSON = "application/json"
HTML = "text/html; charset=utf-8"


# --------------------------------------------------------------------------- data types


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON
    drop_connection: bool = False
    latency: float = 0.0

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    @classmethod
    def of_json(cls, status: int, data: Any) -> Response:
        return cls(status, json.dumps(data, ensure_ascii=False).encode("utf-8"))


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    request_json: Any
    response_json: Any
    dropped: bool
    at: float
    request_id: str = ""
    fault: bool = False
    content_type: str = JSON
    response_text: str | None = None  # the body when it is not JSON (HTML content, 500 text)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Call:
        return cls(**data)


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


@dataclass
class Index:
    id: str
    doc_id: str
    model: str
    t0: float
    terminal: str | None = None  # document_too_small / rag_limit_exceeded / failed / succeeded
    fate: str | None = None  # decided when the index would finish: succeed / failed / stuck


@dataclass
class IndexBehaviour:
    match: str
    behaviour: str
    times: int | None

    def applies(self, doc: Doc) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        return doc.id == self.match or doc.name.startswith(self.match)


@dataclass
class Agent:
    agent_id: str
    body: dict[str, Any]
    created_at: float
    updated_at: float
    version: int = 1


class ApiError(Exception):
    """Raised inside handlers; becomes the HTTP answer."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(status, detail)
        self.status = status
        self.detail = detail


def render_html(text: str) -> str:
    """The legacy HTML rendering [guess]: one escaped ``<p>`` per blank-line separated block."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)


def _missing(loc: list[str | int], inp: Any) -> dict[str, Any]:
    return {"type": "missing", "loc": loc, "msg": "Field required", "input": inp}


def _type_error(loc: list[str | int], kind: str, inp: Any) -> dict[str, Any]:
    msgs = {
        "string_type": "Input should be a valid string",
        "dict_type": "Input should be a valid dictionary",
        "list_type": "Input should be a valid list",
        "bool_type": "Input should be a valid boolean",
        "model_attributes_type": (
            "Input should be a valid dictionary or object to extract fields from"
        ),
    }
    return {"type": kind, "loc": loc, "msg": msgs.get(kind, kind), "input": inp}


def _enum_error(loc: list[str | int], allowed: Iterable[str], inp: Any) -> dict[str, Any]:
    options = [f"'{a}'" for a in allowed]
    expected = ", ".join(options[:-1]) + " or " + options[-1]
    return {
        "type": "enum",
        "loc": loc,
        "msg": f"Input should be {expected}",
        "input": inp,
        "ctx": {"expected": expected},
    }


def _validation(*errors: dict[str, Any]) -> ApiError:
    return ApiError(422, list(errors))


def _detail(status: str, message: str, code: str | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"status": status, "message": message}
    if code is not None:
        detail["code"] = code
        detail["request_id"] = None  # filled with the request's id
    return detail


def _first_words(text: str, words: int = 6, limit: int = 60) -> str:
    name = " ".join(text.split()[:words])[:limit].strip()
    return name or "Untitled document"


# --------------------------------------------------------------------------- routing

Handler = Callable[["Backend", "_Req"], Response]


@dataclass
class _Req:
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    request_id: str

    def json_body(self, required: bool = True) -> Any:
        if not self.body.strip():
            if required:
                raise _validation(_missing(["body"], None))
            return {}
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            pos = getattr(exc, "pos", 0)
            raise _validation(
                {
                    "type": "json_invalid",
                    "loc": ["body", pos],
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": str(exc)},
                }
            ) from exc

    def object_body(self, required: bool = True) -> dict[str, Any]:
        data = self.json_body(required)
        if not isinstance(data, dict):
            raise _validation(_type_error(["body"], "model_attributes_type", data))
        return data

    def one(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


_ROUTES: list[tuple[str, re.Pattern[str], str]] = []


def _route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")

    def deco(fn: Handler) -> Handler:
        _ROUTES.append((method, regex, fn.__name__))
        return fn

    return deco


def _id(
    rng: random.Random, n: int = 20, alphabet: str = string.ascii_letters + string.digits
) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


# --------------------------------------------------------------------------- the backend


class Backend:
    """The whole fake workspace. Every public method takes the one lock; safe across threads."""

    def __init__(
        self,
        api_key: str | None = "test-key",
        clock: Clock | None = None,
        quota_bytes: int = CREATOR_QUOTA,
        index_seconds: float = 3.0,
        seed: int | None = None,
    ) -> None:
        self.api_key = api_key
        self.clock: Clock = clock if clock is not None else FakeClock()
        self.index_seconds = index_seconds
        self._initial_quota = quota_bytes
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self.after_request: list[Callable[[Backend, Call], None]] = []
        self.reset()

    # ------------------------------------------------------------------ state management

    def reset(self) -> None:
        """Forget every document, index, agent, fault, behaviour and call. Hooks stay."""
        with self._lock:
            self.docs: dict[str, Doc] = {}
            self.indexes: dict[tuple[str, str], Index] = {}
            self.agents: dict[str, Agent] = {}
            self.faults: list[FaultRule] = []
            self.behaviours: list[IndexBehaviour] = []
            self.calls: list[Call] = []
            self.quota_bytes = self._initial_quota
            self.linger_times = 0
            self._lingering: dict[str, dict[str, int]] = {}  # doc id -> agent id -> attempts
            self._seq = 0

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def now(self) -> float:
        return self.clock.now()

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
        if behaviour not in ("failed", "stuck", "succeed"):
            raise ValueError(f"unknown index behaviour {behaviour!r}")
        with self._lock:
            self.behaviours.insert(0, IndexBehaviour(match, behaviour, times))

    def set_quota(self, total_max_bytes: int) -> None:
        with self._lock:
            self.quota_bytes = int(total_max_bytes)

    # ------------------------------------------------------------------ seeding

    def new_agent_id(self) -> str:
        return "agent_" + _id(self._rng, 26, string.ascii_lowercase + string.digits)

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
            now = self.now()
            locators = [dict(loc) for loc in knowledge_base or []]
            for loc in locators:
                loc.setdefault("usage_mode", "auto")
                loc.setdefault("type", "text")
            body = _agent_body(
                agent_id,
                name,
                rag_enabled,
                embedding_model,
                locators,
                prompt,
                first_message,
                language,
            )
            self.agents[agent_id] = Agent(agent_id, body, now, now)
            return agent_id

    def seed_document(
        self,
        name: str,
        text: str,
        content_format: str = "markdown",
        indexed_models: Iterable[str] = (DEFAULT_MODEL,),
        attach_to: Iterable[str] = (),
        usage_mode: str = "auto",
    ) -> str:
        """A document as if uploaded earlier: its indexes are already finished (``succeeded``,
        or ``document_too_small`` / ``rag_limit_exceeded`` when that is what they would be)."""
        if content_format not in ("markdown", "html"):
            raise ValueError("content_format must be markdown or html")
        with self._lock:
            doc = self._create_doc(name, text, content_format)
            for model in indexed_models:
                idx = self._get_or_create_index(doc, model)
                if idx.terminal is None:
                    idx.terminal, idx.fate = "succeeded", "succeed"
            for agent_id in attach_to:
                self.attach(agent_id, doc.id, usage_mode)
            return doc.id

    def attach(self, agent_id: str, doc_id: str, usage_mode: str = "auto") -> None:
        """Put a doc on an agent directly (no readiness check, version bumped)."""
        with self._lock:
            agent = self.agents[agent_id]
            doc = self.docs[doc_id]
            kb = self._kb(agent)
            kb[:] = [loc for loc in kb if loc["id"] != doc_id]
            kb.append({"type": "text", "name": doc.name, "id": doc.id, "usage_mode": usage_mode})
            self._bump(agent)

    # ------------------------------------------------------------------ inspection helpers

    def agent_kb(self, agent_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._kb(self.agents[agent_id]))

    def agent_version(self, agent_id: str) -> int:
        with self._lock:
            return self.agents[agent_id].version

    def agent_json(self, agent_id: str) -> dict[str, Any]:
        with self._lock:
            return self._agent_view(self.agents[agent_id])

    def index_status(self, doc_id: str, model: str = DEFAULT_MODEL) -> str | None:
        with self._lock:
            idx = self.indexes.get((doc_id, model))
            return None if idx is None else self._index_state(idx)[0]

    def used_bytes(self) -> int:
        with self._lock:
            return sum(self._index_used(i) for i in self.indexes.values())

    def dependents(self, doc_id: str) -> list[str]:
        with self._lock:
            return self._dependent_ids(doc_id)

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
                        "dependent_agents": self._dependent_ids(d.id),
                    }
                    for d in self._ordered_docs()
                ],
                "indexes": [
                    {"document_id": i.doc_id, **self._index_view(i)} for i in self.indexes.values()
                ],
                "agents": [
                    {
                        "agent_id": a.agent_id,
                        "version": a.version,
                        "knowledge_base": copy.deepcopy(self._kb(a)),
                        "agent": self._agent_view(a),
                    }
                    for a in self.agents.values()
                ],
                "quota": {
                    "total_used_bytes": self.used_bytes(),
                    "total_max_bytes": self.quota_bytes,
                },
                "faults": [f.to_dict() for f in self.faults],
                "linger_times": self.linger_times,
            }

    # ------------------------------------------------------------------ the entry point

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> Response:
        method = method.upper()
        query = query or {}
        hdrs = {k.lower(): v for k, v in (headers or {}).items()}
        body = body or b""
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            from sync.emulator.control import handle_control

            return handle_control(self, method, path, query, body)
        request_id = uuid.uuid4().hex
        with self._lock:
            rule = next((r for r in self.faults if r.matches(method, path)), None)
            if rule is not None:
                rule.consume()
            if rule is not None and rule.status is not None:
                resp = self._fault_response(rule, request_id)
            else:
                resp = self._dispatch(method, path, query, hdrs, body, request_id)
                if rule is not None and rule.drop_after_commit:
                    resp.drop_connection = True
            if rule is not None:
                resp.latency = rule.latency
            resp.headers["request-id"] = request_id
            call = Call(
                method=method,
                path=path,
                query={k: list(v) for k, v in query.items()},
                status=resp.status,
                request_json=_maybe_json(body),
                response_json=_maybe_json(resp.body) if "json" in resp.content_type else None,
                dropped=resp.drop_connection,
                at=self.now(),
                request_id=request_id,
                fault=rule is not None and rule.status is not None,
                content_type=resp.content_type,
                response_text=None
                if "json" in resp.content_type
                else resp.body.decode("utf-8", "replace"),
            )
            self.calls.append(call)
            for hook in list(self.after_request):
                hook(self, call)
            return resp

    def _fault_response(self, rule: FaultRule, request_id: str) -> Response:
        if isinstance(rule.body, str):
            resp = Response(
                rule.status or 500, rule.body.encode(), content_type="text/plain; charset=utf-8"
            )
        else:
            body = copy.deepcopy(rule.body) if rule.body is not None else None
            if body is None:
                body = {"detail": _reason(rule.status or 500)}
            _fill_request_id(body, request_id)
            resp = Response.of_json(rule.status or 500, body)
        resp.headers.update(rule.headers or {})
        return resp

    def _dispatch(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        request_id: str,
    ) -> Response:
        handler_name: str | None = None
        params: dict[str, str] = {}
        path_known = False
        if path.startswith(API_PREFIX + "/"):
            sub = path[len(API_PREFIX) :]
            for route_method, regex, name in _ROUTES:
                m = regex.match(sub)
                if m is None:
                    continue
                path_known = True
                if route_method == method:
                    handler_name, params = name, m.groupdict()
                    break
        if handler_name is None:
            if path_known:
                return Response.of_json(405, {"detail": "Method Not Allowed"})
            return Response.of_json(404, {"detail": "Not Found"})
        try:
            key = headers.get("xi-api-key")
            if not key:
                raise ApiError(
                    401,
                    _detail(
                        "needs_authorization",
                        "Neither authorization header nor xi-api-key received, please provide one.",
                    ),
                )
            if self.api_key is not None and key != self.api_key:
                raise ApiError(401, _detail("invalid_api_key", "Invalid API key"))
            req = _Req(method, path, params, query, headers, body, request_id)
            handler: Handler = getattr(type(self), handler_name)
            return handler(self, req)
        except ApiError as err:
            detail = copy.deepcopy(err.detail)
            payload = {"detail": detail}
            _fill_request_id(payload, request_id)
            return Response.of_json(err.status, payload)

    # ------------------------------------------------------------------ internals: docs

    def _create_doc(self, name: str, text: str, content_format: str) -> Doc:
        now = self.now()
        self._seq += 1
        doc_id = _id(self._rng)
        while doc_id in self.docs:
            doc_id = _id(self._rng)
        doc = Doc(doc_id, name, text, content_format, now, now, self._seq)
        self.docs[doc_id] = doc
        return doc

    def _doc(self, doc_id: str) -> Doc:
        doc = self.docs.get(doc_id)
        if doc is None:
            raise ApiError(
                404,
                _detail(
                    "knowledge_base_documentation_not_found",
                    f"Knowledge base documentation with id {doc_id} not found.",
                ),
            )
        return doc

    def _ordered_docs(self) -> list[Doc]:
        return sorted(self.docs.values(), key=lambda d: (d.created_at, d.seq), reverse=True)

    def _doc_metadata(self, doc: Doc) -> dict[str, Any]:
        return {
            "created_at_unix_secs": int(doc.created_at),
            "last_updated_at_unix_secs": int(doc.updated_at),
            "size_bytes": doc.size_bytes,
        }

    def _doc_summary(self, doc: Doc) -> dict[str, Any]:
        return {
            "id": doc.id,
            "name": doc.name,
            "metadata": self._doc_metadata(doc),
            "supported_usages": ["prompt", "auto"],
            "access_info": dict(OWNER),
            "folder_parent_id": None,
            "folder_path": [],
            "dependent_agents": [],  # deprecated in the real API: always empty there too
            "type": "text",
        }

    def _doc_view(self, doc: Doc) -> dict[str, Any]:
        """GET /knowledge-base/{id}: the list item without the deprecated field, plus content."""
        view = self._doc_summary(doc)
        del view["dependent_agents"]
        view.update(extracted_inner_html=doc.html, content_format=doc.content_format)
        return view

    def _dependent_ids(self, doc_id: str) -> list[str]:
        ids = [
            a.agent_id
            for a in self.agents.values()
            if any(loc["id"] == doc_id for loc in self._kb(a))
        ]
        for agent_id, left in self._lingering.get(doc_id, {}).items():
            if left > 0 and agent_id not in ids and agent_id in self.agents:
                ids.append(agent_id)
        return ids

    # ------------------------------------------------------------------ internals: indexes

    def _index_used(self, idx: Index) -> int:
        status = self._index_state(idx)[0]
        if status in PENDING or status == "succeeded":
            doc = self.docs.get(idx.doc_id)
            return doc.size_bytes if doc else 0
        return 0

    def _behaviour_for(self, doc: Doc) -> IndexBehaviour | None:
        return next((b for b in self.behaviours if b.applies(doc)), None)

    def _index_state(self, idx: Index) -> tuple[str, float]:
        if idx.terminal is not None:
            return idx.terminal, (100.0 if idx.terminal in ("succeeded", "failed") else 0.0)
        elapsed = self.now() - idx.t0
        if elapsed >= self.index_seconds:
            if idx.fate is None:
                doc = self.docs[idx.doc_id]
                rule = self._behaviour_for(doc)
                idx.fate = "succeed" if rule is None else rule.behaviour
                if rule is not None and rule.times is not None:
                    rule.times -= 1
            if idx.fate == "stuck":
                return "processing", 99.0
            idx.terminal = "failed" if idx.fate == "failed" else "succeeded"
            return idx.terminal, 100.0
        if elapsed < self.index_seconds * CREATED_FRACTION:
            return "created", 0.0
        return "processing", round(min(99.0, 100.0 * elapsed / self.index_seconds), 1)

    def _start_index(self, idx: Index, doc: Doc) -> None:
        idx.t0, idx.terminal, idx.fate = self.now(), None, None
        if doc.size_bytes < MIN_INDEX_BYTES:
            idx.terminal = "document_too_small"
            return
        others = sum(self._index_used(i) for i in self.indexes.values() if i is not idx)
        if others + doc.size_bytes > self.quota_bytes:
            idx.terminal = "rag_limit_exceeded"
            return
        if self.index_seconds <= 0:
            self._index_state(idx)

    def _get_or_create_index(self, doc: Doc, model: str) -> Index:
        idx = self.indexes.get((doc.id, model))
        if idx is None:
            idx = Index(_id(self._rng), doc.id, model, self.now())
            self.indexes[(doc.id, model)] = idx
            self._start_index(idx, doc)
        elif idx.terminal in ("failed", "rag_limit_exceeded"):
            # [guess] computing again restarts a failed index, once a caller has seen it fail
            # (the call that first finds it failed reports `failed`)
            self._start_index(idx, doc)
        return idx

    def _index_view(self, idx: Index) -> dict[str, Any]:
        status, progress = self._index_state(idx)
        return {
            "id": idx.id,
            "model": idx.model,
            "status": status,
            "progress_percentage": progress,
            "document_model_index_usage": {"used_bytes": self._index_used(idx)},
        }

    # ------------------------------------------------------------------ internals: agents

    @staticmethod
    def _kb(agent: Agent) -> list[dict[str, Any]]:
        prompt = agent.body.setdefault("conversation_config", {}).setdefault("agent", {})
        prompt = prompt.setdefault("prompt", {})
        kb = prompt.get("knowledge_base")
        if not isinstance(kb, list):
            kb = []
            prompt["knowledge_base"] = kb
        return kb

    @staticmethod
    def _rag(body: dict[str, Any]) -> dict[str, Any]:
        rag = body.get("conversation_config", {}).get("agent", {}).get("prompt", {}).get("rag")
        return rag if isinstance(rag, dict) else {}

    def _agent(self, agent_id: str) -> Agent:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise ApiError(404, _detail("agent_not_found", f"Agent with id {agent_id} not found."))
        return agent

    def _bump(self, agent: Agent) -> None:
        agent.version += 1
        agent.updated_at = self.now()

    def _agent_view(self, agent: Agent) -> dict[str, Any]:
        body = copy.deepcopy(agent.body)
        body["agent_id"] = agent.agent_id
        body["metadata"] = {
            "created_at_unix_secs": int(agent.created_at),
            "updated_at_unix_secs": int(agent.updated_at),
        }
        body["version_id"] = f"agtvrsn_{agent.agent_id[6:]}_{agent.version:04d}"
        return body

    def _detach(self, doc_id: str, agent_id: str) -> None:
        if self.linger_times > 0:
            self._lingering.setdefault(doc_id, {})[agent_id] = self.linger_times

    # ------------------------------------------------------------------ route handlers

    @_route("POST", "/knowledge-base/text")
    def _create_text(self, req: _Req) -> Response:
        data = req.object_body()
        errors = []
        text = data.get("text")
        if "text" not in data:
            errors.append(_missing(["body", "text"], data))
        elif not isinstance(text, str):
            errors.append(_type_error(["body", "text"], "string_type", text))
        name = data.get("name")
        if name is not None and not isinstance(name, str):
            errors.append(_type_error(["body", "name"], "string_type", name))
        elif isinstance(name, str) and not name:
            errors.append(
                {
                    "type": "string_too_short",
                    "loc": ["body", "name"],
                    "msg": "String should have at least 1 character",
                    "input": name,
                    "ctx": {"min_length": 1},
                }
            )
        folder = data.get("parent_folder_id")
        if folder is not None and not isinstance(folder, str):
            errors.append(_type_error(["body", "parent_folder_id"], "string_type", folder))
        if errors:
            raise _validation(*errors)
        assert isinstance(text, str)
        doc = self._create_doc(
            name if isinstance(name, str) else _first_words(text), text, "markdown"
        )
        return Response.of_json(200, {"id": doc.id, "name": doc.name, "folder_path": []})

    @_route("GET", "/knowledge-base")
    def _list_docs(self, req: _Req) -> Response:
        page_size = _int_param(req, "page_size", 30, 1, 100)
        types = req.query.get("types") or []
        errors = [
            _enum_error(["query", "types", i], DOC_TYPES, t)
            for i, t in enumerate(types)
            if t not in DOC_TYPES
        ]
        sort_by = req.one("sort_by") or "created_at"
        if sort_by not in ("name", "created_at", "updated_at", "size"):
            errors.append(
                _enum_error(
                    ["query", "sort_by"], ("name", "created_at", "updated_at", "size"), sort_by
                )
            )
        direction = req.one("sort_direction") or "desc"
        if direction not in ("asc", "desc"):
            errors.append(_enum_error(["query", "sort_direction"], ("asc", "desc"), direction))
        if errors:
            raise _validation(*errors)
        search = req.one("search")
        docs = list(self.docs.values())
        if types and "text" not in types:
            docs = []
        if search:
            docs = [d for d in docs if d.name.casefold().startswith(search.casefold())]

        def key(d: Doc) -> list[Any]:
            primary: Any = {
                "name": d.name,
                "created_at": d.created_at,
                "updated_at": d.updated_at,
                "size": d.size_bytes,
            }[sort_by]
            return [primary, d.seq]

        reverse = direction == "desc"
        docs.sort(key=key, reverse=reverse)
        cursor = req.one("cursor")
        if cursor:
            after = _decode_cursor(cursor)
            docs = [d for d in docs if (key(d) < after if reverse else key(d) > after)]
        page = docs[:page_size]
        has_more = len(docs) > page_size
        return Response.of_json(
            200,
            {
                "documents": [self._doc_summary(d) for d in page],
                "next_cursor": _encode_cursor(key(page[-1])) if has_more else None,
                "has_more": has_more,
            },
        )

    @_route("GET", "/knowledge-base/rag-index")
    def _rag_overview(self, req: _Req) -> Response:
        per_model: dict[str, int] = {}
        for idx in self.indexes.values():
            used = self._index_used(idx)
            if used:
                per_model[idx.model] = per_model.get(idx.model, 0) + used
        return Response.of_json(
            200,
            {
                "total_used_bytes": sum(per_model.values()),
                "total_max_bytes": self.quota_bytes,
                "models": [{"model": m, "used_bytes": b} for m, b in sorted(per_model.items())],
            },
        )

    @_route("GET", "/knowledge-base/{doc_id}")
    def _get_doc(self, req: _Req) -> Response:
        return Response.of_json(200, self._doc_view(self._doc(req.params["doc_id"])))

    @_route("PATCH", "/knowledge-base/{doc_id}")
    def _patch_doc(self, req: _Req) -> Response:
        doc = self._doc(req.params["doc_id"])
        data = req.object_body(required=False)
        errors = []
        name, content = data.get("name"), data.get("content")
        if name is not None and (not isinstance(name, str) or not name):
            errors.append(
                _type_error(["body", "name"], "string_type", name)
                if not isinstance(name, str)
                else {
                    "type": "string_too_short",
                    "loc": ["body", "name"],
                    "msg": "String should have at least 1 character",
                    "input": name,
                    "ctx": {"min_length": 1},
                }
            )
        if content is not None and not isinstance(content, str):
            errors.append(_type_error(["body", "content"], "string_type", content))
        if errors:
            raise _validation(*errors)
        changed = False
        if isinstance(name, str) and name != doc.name:
            doc.name, changed = name, True
            for agent in self.agents.values():
                for loc in self._kb(agent):
                    if loc["id"] == doc.id:
                        loc["name"] = name
        if isinstance(content, str):
            doc.text, doc.content_format, changed = content, "markdown", True
            for (doc_id, _model), idx in self.indexes.items():
                if doc_id == doc.id:
                    self._start_index(idx, doc)  # [guess] new content: indexes start over
        if changed:
            doc.updated_at = self.now()
        return Response.of_json(200, self._doc_view(doc))

    @_route("DELETE", "/knowledge-base/{doc_id}")
    def _delete_doc(self, req: _Req) -> Response:
        doc = self._doc(req.params["doc_id"])
        force = _bool_param(req, "force", False)
        if not force:
            lingering = self._lingering.get(doc.id, {})
            dependents = self._dependent_ids(doc.id)
            for agent_id, left in list(lingering.items()):
                lingering[agent_id] = left - 1
            if dependents:
                raise ApiError(
                    400,
                    _detail(
                        "document_has_dependent_agents",
                        f"Document {doc.id} cannot be deleted because it is used by "
                        f"{len(dependents)} agent(s). Remove it from the agents first or "
                        "use force=true.",
                        code="document_has_dependent_agents",
                    ),
                )
        for agent in self.agents.values():
            kb = self._kb(agent)
            kept = [loc for loc in kb if loc["id"] != doc.id]
            if len(kept) != len(kb):
                kb[:] = kept
                self._bump(agent)
        del self.docs[doc.id]
        self._lingering.pop(doc.id, None)
        for k in [k for k in self.indexes if k[0] == doc.id]:
            del self.indexes[k]
        return Response.of_json(200, {})

    @_route("GET", "/knowledge-base/{doc_id}/content")
    def _doc_content(self, req: _Req) -> Response:
        doc = self._doc(req.params["doc_id"])
        return Response(200, doc.content().encode("utf-8"), content_type=HTML)

    @_route("GET", "/knowledge-base/{doc_id}/dependent-agents")
    def _dependent_agents(self, req: _Req) -> Response:
        doc = self._doc(req.params["doc_id"])
        _int_param(req, "page_size", 30, 1, 100)
        kind = req.one("dependent_type") or "all"
        if kind not in ("direct", "transitive", "all"):
            raise _validation(
                _enum_error(["query", "dependent_type"], ("direct", "transitive", "all"), kind)
            )
        agents = []
        if kind != "transitive":
            for agent_id in self._dependent_ids(doc.id):
                agent = self.agents[agent_id]
                agents.append(
                    {
                        "id": agent.agent_id,
                        "name": agent.body.get("name", ""),
                        "type": "available",
                        "created_at_unix_secs": int(agent.created_at),
                        "access_level": "admin",
                        "referenced_resource_ids": [doc.id],
                    }
                )
        return Response.of_json(
            200, {"agents": agents, "branches": [], "next_cursor": None, "has_more": False}
        )

    @_route("POST", "/knowledge-base/{doc_id}/rag-index")
    def _compute_index(self, req: _Req) -> Response:
        doc = self._doc(req.params["doc_id"])
        data = req.object_body()
        model = data.get("model")
        if "model" not in data:
            raise _validation(_missing(["body", "model"], data))
        if model not in EMBEDDING_MODELS:
            raise _validation(_enum_error(["body", "model"], EMBEDDING_MODELS, model))
        idx = self._get_or_create_index(doc, str(model))
        return Response.of_json(200, self._index_view(idx))

    @_route("GET", "/knowledge-base/{doc_id}/rag-index")
    def _list_indexes(self, req: _Req) -> Response:
        doc = self._doc(req.params["doc_id"])
        views = [self._index_view(i) for (d, _m), i in self.indexes.items() if d == doc.id]
        return Response.of_json(200, {"indexes": views})

    @_route("GET", "/agents/{agent_id}")
    def _get_agent(self, req: _Req) -> Response:
        return Response.of_json(200, self._agent_view(self._agent(req.params["agent_id"])))

    @_route("PATCH", "/agents/{agent_id}")
    def _patch_agent(self, req: _Req) -> Response:
        agent = self._agent(req.params["agent_id"])
        data = req.object_body()
        errors: list[dict[str, Any]] = []
        for key in ("conversation_config", "platform_settings"):
            if data.get(key) is not None and not isinstance(data[key], dict):
                errors.append(_type_error(["body", key], "dict_type", data[key]))
        if data.get("name") is not None and not isinstance(data["name"], str):
            errors.append(_type_error(["body", "name"], "string_type", data["name"]))
        tags = data.get("tags")
        if tags is not None and (
            not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)
        ):
            errors.append(_type_error(["body", "tags"], "list_type", tags))
        if errors:
            raise _validation(*errors)
        patch = {
            k: v for k, v in data.items() if v is not None and k not in ("version_description",)
        }
        merged = _deep_merge(copy.deepcopy(agent.body), patch)
        prompt = merged.get("conversation_config", {}).get("agent", {}).get("prompt", {})
        kb_loc: list[str | int] = [
            "body",
            "conversation_config",
            "agent",
            "prompt",
            "knowledge_base",
        ]
        cc = data.get("conversation_config") or {}
        new_kb = None
        patch_prompt = (
            cc.get("agent", {}).get("prompt") if isinstance(cc.get("agent"), dict) else None
        )
        if isinstance(patch_prompt, dict) and "knowledge_base" in patch_prompt:
            new_kb = _validate_locators(patch_prompt["knowledge_base"], kb_loc)
            prompt["knowledge_base"] = new_kb
        rag = prompt.get("rag") if isinstance(prompt.get("rag"), dict) else {}
        model = rag.get("embedding_model", "e5_mistral_7b_instruct")
        if model not in EMBEDDING_MODELS:
            raise _validation(
                _enum_error(
                    ["body", "conversation_config", "agent", "prompt", "rag", "embedding_model"],
                    EMBEDDING_MODELS,
                    model,
                )
            )
        kb = prompt.get("knowledge_base") or []
        for loc in new_kb or []:
            self._doc(loc["id"])
        if rag.get("enabled"):
            not_ready = []
            for loc in kb:
                if loc.get("usage_mode", "auto") != "auto" or loc["id"] not in self.docs:
                    continue
                idx = self.indexes.get((loc["id"], model))
                if idx is None or self._index_state(idx)[0] != "succeeded":
                    not_ready.append(loc["id"])
            if not_ready:
                raise ApiError(
                    422,
                    _detail(
                        "rag_index_not_ready",
                        f"RAG index for model {model} is not ready for documents: "
                        + ", ".join(not_ready)
                        + ". Compute the index and wait until it succeeds before attaching "
                        "the documents in auto mode.",
                        code="rag_index_not_ready",
                    ),
                )
        old_ids = {loc["id"] for loc in self._kb(agent)}
        new_ids = {loc["id"] for loc in kb}
        for doc_id in old_ids - new_ids:
            self._detach(doc_id, agent.agent_id)
        for doc_id in new_ids:
            self._lingering.get(doc_id, {}).pop(agent.agent_id, None)
        agent.body = merged
        self._bump(agent)
        return Response.of_json(200, self._agent_view(agent))

    @_route("GET", "/agent/{agent_id}/knowledge-base/size")
    def _agent_kb_size(self, req: _Req) -> Response:
        agent = self._agent(req.params["agent_id"])
        total = sum(
            self.docs[loc["id"]].size_bytes for loc in self._kb(agent) if loc["id"] in self.docs
        )
        return Response.of_json(200, {"number_of_pages": round(total / BYTES_PER_PAGE, 2)})

    @_route("POST", "/agents/{agent_id}/knowledge-base/rag-query")
    def _rag_query(self, req: _Req) -> Response:
        agent = self._agent(req.params["agent_id"])
        data = req.object_body()
        query = data.get("query")
        if "query" not in data:
            raise _validation(_missing(["body", "query"], data))
        if not isinstance(query, str):
            raise _validation(_type_error(["body", "query"], "string_type", query))
        rag = self._rag(agent.body)
        if not rag.get("enabled"):
            raise ApiError(
                400,
                _detail(
                    "rag_not_enabled",
                    "RAG is not enabled for this agent.",
                    code="rag_not_enabled",
                ),
            )
        model = rag.get("embedding_model", "e5_mistral_7b_instruct")
        limit = min(RAG_QUERY_TOP, int(rag.get("max_retrieved_rag_chunks_count", RAG_QUERY_TOP)))
        return Response.of_json(200, {"chunks": self.retrieve(agent.agent_id, query, model, limit)})

    def retrieve(
        self, agent_id: str, query: str, model: str, limit: int = RAG_QUERY_TOP
    ) -> list[dict[str, Any]]:
        """Lexical retrieval [guess]: paragraphs of the agent's ``auto`` docs with a succeeded
        index for ``model``, scored by the share of the query's word tokens they contain."""
        wanted = set(_tokens(query))
        if not wanted:
            return []
        scored: list[tuple[float, int, dict[str, Any]]] = []
        order = 0
        for loc in self._kb(self.agents[agent_id]):
            doc = self.docs.get(loc["id"])
            if doc is None or loc.get("usage_mode", "auto") != "auto":
                continue
            idx = self.indexes.get((doc.id, model))
            if idx is None or self._index_state(idx)[0] != "succeeded":
                continue
            for para in re.split(r"\n\s*\n", doc.text):
                para = para.strip()
                if not para:
                    continue
                hit = len(wanted & set(_tokens(para)))
                order += 1
                if hit:
                    score = round(hit / len(wanted), 4)
                    chunk = {
                        "document_id": doc.id,
                        "document_name": doc.name,
                        "content": para,
                        "score": score,
                    }
                    scored.append((-score, order, chunk))
        scored.sort(key=lambda t: (t[0], t[1]))
        return [c for _s, _o, c in scored[:limit]]


# --------------------------------------------------------------------------- helpers


def _agent_body(
    agent_id: str,
    name: str,
    rag_enabled: bool,
    embedding_model: str,
    knowledge_base: list[dict[str, Any]],
    prompt: str,
    first_message: str,
    language: str,
) -> dict[str, Any]:
    return {
        "agent_id": agent_id,
        "name": name,
        "conversation_config": {
            "asr": {
                "quality": "high",
                "provider": "scribe_realtime",
                "user_input_audio_format": "pcm_16000",
                "keywords": [],
            },
            "turn": {"turn_timeout": 7.0, "silence_end_call_timeout": -1.0},
            "tts": {
                "model_id": "eleven_flash_v2",
                "voice_id": "cjVigY5qzO86Huf0OWal",
                "stability": 0.5,
                "speed": 1.0,
                "similarity_boost": 0.8,
            },
            "conversation": {"text_only": False, "max_duration_seconds": 600},
            "agent": {
                "first_message": first_message,
                "language": language,
                "prompt": {
                    "prompt": prompt,
                    "llm": "gemini-2.5-flash",
                    "temperature": 0.0,
                    "max_tokens": -1,
                    "tool_ids": [],
                    "knowledge_base": knowledge_base,
                    "rag": {
                        "enabled": rag_enabled,
                        "embedding_model": embedding_model,
                        "max_vector_distance": 0.6,
                        "max_documents_length": 50000,
                        "max_retrieved_rag_chunks_count": 20,
                    },
                },
            },
        },
        "platform_settings": {"archived": False},
        "phone_numbers": [],
        "access_info": dict(OWNER),
        "tags": [],
    }


def _validate_locators(value: Any, loc: list[str | int]) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _validation(_type_error(loc, "list_type", value))
    errors: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        here = [*loc, i]
        if not isinstance(item, dict):
            errors.append(_type_error(here, "model_attributes_type", item))
            continue
        for key in ("type", "name", "id"):
            if key not in item:
                errors.append(_missing([*here, key], item))
            elif not isinstance(item[key], str):
                errors.append(_type_error([*here, key], "string_type", item[key]))
        if isinstance(item.get("type"), str) and item["type"] not in DOC_TYPES:
            errors.append(_enum_error([*here, "type"], DOC_TYPES, item["type"]))
        mode = item.get("usage_mode", "auto")
        if mode not in USAGE_MODES:
            errors.append(_enum_error([*here, "usage_mode"], USAGE_MODES, mode))
        out.append({**item, "usage_mode": mode})
    if errors:
        raise _validation(*errors)
    return out


def _deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Objects merge key by key; arrays and scalars replace."""
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _tokens(text: str) -> list[str]:
    return re.findall(r"\w+", text.casefold())


def _int_param(req: _Req, name: str, default: int, lo: int, hi: int) -> int:
    raw = req.one(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _validation(
            {
                "type": "int_parsing",
                "loc": ["query", name],
                "msg": "Input should be a valid integer, unable to parse string as an integer",
                "input": raw,
            }
        ) from None
    if value < lo:
        raise _validation(
            {
                "type": "greater_than_equal",
                "loc": ["query", name],
                "msg": f"Input should be greater than or equal to {lo}",
                "input": raw,
                "ctx": {"ge": lo},
            }
        )
    if value > hi:
        raise _validation(
            {
                "type": "less_than_equal",
                "loc": ["query", name],
                "msg": f"Input should be less than or equal to {hi}",
                "input": raw,
                "ctx": {"le": hi},
            }
        )
    return value


def _bool_param(req: _Req, name: str, default: bool) -> bool:
    raw = req.one(name)
    if raw is None:
        return default
    low = raw.lower()
    if low in ("true", "1", "yes", "on", "t", "y"):
        return True
    if low in ("false", "0", "no", "off", "f", "n"):
        return False
    raise _validation(
        {
            "type": "bool_parsing",
            "loc": ["query", name],
            "msg": "Input should be a valid boolean, unable to interpret input",
            "input": raw,
        }
    )


def _encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        if not isinstance(key, list) or len(key) != 2:
            raise ValueError(cursor)
        return key
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _validation(
            {
                "type": "value_error",
                "loc": ["query", "cursor"],
                "msg": "Value error, invalid cursor",
                "input": cursor,
            }
        ) from None


def _maybe_json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def _fill_request_id(payload: Any, request_id: str) -> None:
    if isinstance(payload, dict):
        detail = payload.get("detail")
        if isinstance(detail, dict) and "request_id" in detail and detail["request_id"] is None:
            detail["request_id"] = request_id


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
