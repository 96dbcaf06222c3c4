"""The one route table: method + path pattern -> handler, for the API and the control plane.

``{name}`` in a pattern matches one path segment and reaches the handler as
``request.params[name]``. API handlers (:mod:`sync.emulator.responses`) take the workspace and
return a :class:`~sync.emulator.wire.Response`; control handlers (:mod:`sync.emulator.control`)
take the backend and return a JSON-ready result. :meth:`Backend.handle
<sync.emulator.backend.Backend.handle>` resolves every request here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sync.emulator.agent_test_responses as testing
import sync.emulator.batch_index as batch
import sync.emulator.branch_responses as branches
import sync.emulator.control as control
import sync.emulator.responses as api
from sync.emulator.wire import Request

API_PREFIX = "/v1/convai"
CONTROL_PREFIX = "/_emulator"
Handler = Callable[[Any, Request], Any]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    handler: Handler
    regex: re.Pattern[str]

    @property
    def control(self) -> bool:
        return self.pattern.startswith(CONTROL_PREFIX + "/")


def _route(method: str, pattern: str, handler: Handler) -> Route:
    regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")
    return Route(method, pattern, handler, regex)


def _api(method: str, pattern: str, handler: Handler) -> Route:
    return _route(method, API_PREFIX + pattern, handler)


def _control(method: str, pattern: str, handler: Handler) -> Route:
    return _route(method, CONTROL_PREFIX + pattern, handler)


URLS: tuple[Route, ...] = (
    _api("POST", "/knowledge-base/text", api.create_text),
    _api("POST", "/knowledge-base/folder", api.create_folder),
    _api("POST", "/knowledge-base/bulk-move", api.bulk_move),
    _api("POST", "/knowledge-base/dependent-agents", api.bulk_dependents),
    _api("GET", "/knowledge-base", api.list_docs),
    _api("GET", "/knowledge-base/rag-index", api.rag_overview),
    _api("POST", "/knowledge-base/rag-index", batch.compute_batch),
    _api("GET", "/knowledge-base/{doc_id}", api.get_doc),
    _api("PATCH", "/knowledge-base/{doc_id}", api.patch_doc),
    _api("DELETE", "/knowledge-base/{doc_id}", api.delete_doc),
    _api("GET", "/knowledge-base/{doc_id}/content", api.doc_content),
    _api("GET", "/knowledge-base/{doc_id}/dependent-agents", api.dependent_agents),
    _api("POST", "/knowledge-base/{doc_id}/rag-index", api.compute_index),
    _api("GET", "/knowledge-base/{doc_id}/rag-index", api.list_indexes),
    _api("POST", "/knowledge-base/{doc_id}/move", api.move_doc),
    _api("GET", "/agents/{agent_id}", api.get_agent),
    _api("PATCH", "/agents/{agent_id}", api.patch_agent),
    _api("GET", "/agent/{agent_id}/knowledge-base/size", api.agent_kb_size),
    _api("POST", "/agents/{agent_id}/knowledge-base/rag-query", api.rag_query),
    _api("GET", "/agents/{agent_id}/branches", branches.list_branches),
    _api("POST", "/agents/{agent_id}/branches", branches.create_branch),
    _api("GET", "/agents/{agent_id}/branches/{branch_id}", branches.get_branch),
    _api("PATCH", "/agents/{agent_id}/branches/{branch_id}", branches.patch_branch),
    _api("POST", "/agents/{agent_id}/branches/{branch_id}/merge", branches.merge_branch),
    _api("POST", "/agent-testing/create", testing.create_test),
    _api("GET", "/agent-testing", testing.list_tests),
    _api("GET", "/agent-testing/{test_id}", testing.get_test),
    _api("DELETE", "/agent-testing/{test_id}", testing.delete_test),
    _api("POST", "/agents/{agent_id}/run-tests", testing.run_tests),
    _api("GET", "/test-invocations/{invocation_id}", testing.get_invocation),
    _control("POST", "/reset", control.reset),
    _control("POST", "/agents", control.seed_agent),
    _control("POST", "/documents", control.seed_document),
    _control("POST", "/attach", control.attach),
    _control("POST", "/faults", control.add_fault),
    _control("DELETE", "/faults", control.clear_faults),
    _control("POST", "/concurrency-limit", control.concurrency_limit),
    _control("GET", "/calls", control.calls),
    _control("DELETE", "/calls", control.clear_calls),
    _control("POST", "/clock/advance", control.advance),
    _control("POST", "/index-behaviour", control.index_behaviour),
    _control("POST", "/linger", control.linger),
    _control("POST", "/quota", control.quota),
    _control("POST", "/plan", control.plan),
    _control("POST", "/stale-retrieval", control.stale_retrieval),
    _control("POST", "/folders", control.seed_folder),
    _control("POST", "/branches", control.seed_branch),
    _control("GET", "/state", control.state),
    _control("POST", "/agent-tests/behaviour", testing.control_behaviour),
    _control("POST", "/agent-tests/settings", testing.control_settings),
    _control("GET", "/agent-tests", testing.control_state),
)


def is_control(path: str) -> bool:
    return path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")


@dataclass(frozen=True)
class Match:
    route: Route | None  # None: no route for this method
    params: dict[str, str]
    path_known: bool  # some route has this path (a wrong method is then a 405)


def resolve(method: str, path: str) -> Match:
    """The route for ``method path`` on the plane ``path`` belongs to. A control path is
    matched without its trailing slashes; an API path only under ``/v1/convai/``."""
    control_plane = is_control(path)
    if control_plane:
        path = path.rstrip("/")
    elif not path.startswith(API_PREFIX + "/"):
        return Match(None, {}, False)
    known = False
    for route in URLS:
        if route.control != control_plane:
            continue
        m = route.regex.match(path)
        if m is None:
            continue
        known = True
        if route.method == method:
            return Match(route, m.groupdict(), True)
    return Match(None, {}, known)
