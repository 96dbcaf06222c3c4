"""A small ElevenLabs API client: the knowledge-base, RAG-index and agent operations.

Errors become :mod:`sync.errors` exceptions carrying status, code and request id. Retries
follow :func:`sync.retry.decide`; a 429 slows every worker down (a shared back-off), not only
the one that saw it. Every exchange is counted and can be recorded, with no headers, so the
API key never reaches a record.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from . import __version__
from .answers import FATAL_FIRST, Pages, checked, error_from, payload_of, transport_kind
from .clock import Clock, SystemClock
from .errors import (
    ApiError,
    ServerError,
    TransportError,
)
from .log import event, redact, register_secret
from .retry import RetryPolicy, decide, parse_retry_after

PAGE_SIZE = 100
Json = dict[str, Any]


class Client:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        clock: Clock | None = None,
        policy: RetryPolicy | None = None,
        timeout: tuple[float, float] = (5.0, 60.0),
        on_exchange: Callable[[Json], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        register_secret(api_key)  # redacted from every log line, error and recorded exchange
        self.clock = clock or SystemClock()
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self.on_exchange = on_exchange
        self._local = threading.local()
        self._lock = threading.Lock()
        self._not_before = 0.0  # shared back-off after a 429
        self.requests_sent = 0
        self.writes_sent = 0
        self._answered = False  # has the server answered anything yet (a wrong URL fails fast)

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r})"

    # -- transport -------------------------------------------------------------------------
    def _session(self) -> requests.Session:
        s: requests.Session | None = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            s.headers["xi-api-key"] = self._key
            s.headers["User-Agent"] = f"kb-sync/{__version__}"
            self._local.session = s
        return s

    def _wait_shared_backoff(self) -> None:
        with self._lock:
            wait = self._not_before - self.clock.now()
        if wait > 0:
            self.clock.sleep(wait)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        body: Json | None = None,
        idempotent: bool = True,
        expect_json: bool = True,
    ) -> Any:
        """One API call with bounded retries (:func:`sync.retry.decide`); the answer's body."""
        attempt = 0
        while True:
            self._wait_shared_backoff()
            with self._lock:
                self.requests_sent += 1
                if method != "GET":
                    self.writes_sent += 1
            took = (self.clock.now(), time.monotonic())  # when it started; for its elapsed
            try:
                resp = self._session().request(
                    method, self.base_url + path, params=params, json=body, timeout=self.timeout
                )
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                self._record(method, path, params, body, None, None, str(exc), took)
                delay = self._after_transport_error(method, path, exc, attempt, idempotent)
            else:
                self._answered = True
                payload = payload_of(resp, expect_json)
                self._record(method, path, params, body, resp.status_code, payload, None, took)
                if resp.status_code < 400:
                    return checked(method, path, resp, payload, expect_json)
                delay = self._after_error_status(method, path, resp, attempt, idempotent)
            self.clock.sleep(delay)
            attempt += 1

    def _after_transport_error(
        self, method: str, path: str, exc: Exception, attempt: int, idempotent: bool
    ) -> float:
        """The delay before the next attempt, or the error when there is none."""
        kind = transport_kind(exc)
        delay = decide(self.policy, attempt, transport_error=True, idempotent=idempotent)
        if kind in FATAL_FIRST and not self._answered:  # a wrong URL, not a hiccup
            delay = None
        if delay is not None or attempt:  # failing at once, the error line says it all
            event(
                "http.transport_error",
                logging.WARNING,
                method=method,
                path=path,
                attempt=attempt + 1,
                error=type(exc).__name__,
                retry_in=None if delay is None else round(delay, 2),
            )
        if delay is None:
            parts = urlsplit(self.base_url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            raise TransportError(
                redact(
                    f"ELEVENLABS_BASE_URL={self.base_url}: {kind} (host {parts.hostname}, port "
                    f"{port}) on {method} {path}; check the URL and the network, or that the "
                    "server is up"
                ),
                code="transport_error",
            ) from None
        return delay

    def _after_error_status(
        self, method: str, path: str, resp: requests.Response, attempt: int, idempotent: bool
    ) -> float:
        err = error_from(resp)
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        delay = decide(
            self.policy,
            attempt,
            status=resp.status_code,
            retry_after=retry_after,
            idempotent=idempotent,
        )
        if resp.status_code == 429 and delay is not None:
            with self._lock:  # a 429 slows every worker down, not only this one
                self._not_before = max(self._not_before, self.clock.now() + delay)
        if delay is None:
            raise err
        event(
            "http.retry",
            logging.WARNING,
            method=method,
            path=path,
            status=resp.status_code,
            code=err.code,
            attempt=attempt + 1,
            retry_in=round(delay, 2),
        )
        return delay

    def _record(
        self,
        method: str,
        path: str,
        params: Any,
        body: Json | None,
        status: int | None,
        response: Any,
        error: str | None,
        took: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        if self.on_exchange is None:
            return
        text = response if isinstance(response, str) else None
        self.on_exchange(
            json.loads(
                redact(
                    json.dumps(
                        {
                            "method": method,
                            "path": path,
                            "params": params,
                            "request": body,
                            "status": status,
                            "response": text[:2000] if text is not None else response,
                            "error": error,
                            "at": took[0],
                            "elapsed": time.monotonic() - took[1],
                        },
                        ensure_ascii=False,
                        default=str,
                    )
                )
            )
        )

    # -- agents ----------------------------------------------------------------------------
    def get_agent(self, agent_id: str) -> Json:
        return dict(self.request("GET", f"/v1/convai/agents/{quote(agent_id, safe='')}"))

    def patch_agent_kb(self, agent_id: str, knowledge_base: list[Json]) -> Json:
        body = {"conversation_config": {"agent": {"prompt": {"knowledge_base": knowledge_base}}}}
        return dict(
            self.request("PATCH", f"/v1/convai/agents/{quote(agent_id, safe='')}", body=body)
        )

    def agent_kb_size(self, agent_id: str) -> Json:
        return dict(
            self.request("GET", f"/v1/convai/agent/{quote(agent_id, safe='')}/knowledge-base/size")
        )

    def rag_query(self, agent_id: str, query: str) -> Json:
        return dict(
            self.request(
                "POST",
                f"/v1/convai/agents/{quote(agent_id, safe='')}/knowledge-base/rag-query",
                body={"query": query},
            )
        )

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
            page = self.request("GET", "/v1/convai/knowledge-base", params=params)
            yield from page.get("documents", [])
            cursor = pages.next(page)
            if cursor is None:
                return

    def get_document(self, doc_id: str) -> Json:
        return dict(self.request("GET", f"/v1/convai/knowledge-base/{quote(doc_id, safe='')}"))

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
                return dict(
                    self.request(
                        "POST",
                        "/v1/convai/knowledge-base/text",
                        body={"text": text, "name": name}
                        | ({"parent_folder_id": parent_folder_id} if parent_folder_id else {}),
                        idempotent=False,
                    )
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
        return dict(
            self.request("POST", "/v1/convai/knowledge-base/folder", body=body, idempotent=False)
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

    def compute_index(self, doc_id: str, model: str) -> Json:
        return dict(
            self.request(
                "POST",
                f"/v1/convai/knowledge-base/{quote(doc_id, safe='')}/rag-index",
                body={"model": model},
            )
        )

    def compute_indexes(self, doc_ids: Sequence[str], model: str) -> Json:
        """The batch get-or-create of the RAG indexes of 1 to 100 documents: the answer, keyed
        by document id, each ``{"status": "success", "data": <index>}`` or ``{"status":
        "failure", "error_code", "error_status", "error_message"}`` [spec]."""
        items = [{"document_id": d, "create_if_missing": True, "model": model} for d in doc_ids]
        return dict(
            self.request("POST", "/v1/convai/knowledge-base/rag-index", body={"items": items})
        )

    def list_indexes(self, doc_id: str) -> Json:
        return dict(
            self.request("GET", f"/v1/convai/knowledge-base/{quote(doc_id, safe='')}/rag-index")
        )

    def rag_overview(self) -> Json:
        return dict(self.request("GET", "/v1/convai/knowledge-base/rag-index"))

    def dependent_agents(self, doc_id: str, cursor: str | None = None) -> Json:
        return dict(
            self.request(
                "GET",
                f"/v1/convai/knowledge-base/{quote(doc_id, safe='')}/dependent-agents",
                params={"cursor": cursor} if cursor else None,
            )
        )

    def delete_document(self, doc_id: str, *, force: bool = False) -> None:
        params = {"force": "true"} if force else None
        self.request("DELETE", f"/v1/convai/knowledge-base/{quote(doc_id, safe='')}", params=params)
