"""Counting requests from the emulator's call log, by endpoint."""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

from bench.emu import CallRow

PREFIX = "/v1/convai"
ORDER = (
    "agent GET",
    "list pages",
    "quota",
    "create",
    "index compute",
    "index polls",
    "agent re-read",
    "PATCH",
    "content GET",
    "DELETE",
    "doc GET",
    "dependents",
    "other",
)
_DOC = r"/knowledge-base/[^/]+"


def endpoint(c: CallRow) -> str:
    p = c.path[len(PREFIX) :] if c.path.startswith(PREFIX) else c.path
    m = c.method
    if re.fullmatch(r"/agents/[^/]+", p):
        return {"GET": "agent GET", "PATCH": "PATCH"}.get(m, "other")
    if p == "/knowledge-base" and m == "GET":
        return "list pages"
    if p == "/knowledge-base/rag-index" and m == "GET":
        return "quota"
    if p == "/knowledge-base/text" and m == "POST":
        return "create"
    if re.fullmatch(_DOC + "/rag-index", p) and m == "POST":
        return "index"
    if p == "/knowledge-base/rag-index" and m == "POST":
        return "index batch"
    if re.fullmatch(_DOC + "/content", p) and m == "GET":
        return "content GET"
    if re.fullmatch(_DOC + "/dependent-agents", p):
        return "dependents"
    if re.fullmatch(_DOC, p):
        return {"DELETE": "DELETE", "GET": "doc GET"}.get(m, "other")
    return "other"


def breakdown(calls: list[CallRow]) -> dict[str, int]:
    """Requests by endpoint. The first rag-index POST of a document is its compute, the others
    are polls; a batch request is a compute when it names a document for the first time, else
    a poll; the agent GETs after the first are the re-read before the PATCH."""
    counts: Counter[str] = Counter()
    indexed: set[str] = set()
    agent_gets = 0
    for c in calls:
        kind = endpoint(c)
        if kind in ("index", "index batch"):
            docs = set(c.items) if kind == "index batch" else {c.path.split("/")[-2]}
            kind = "index polls" if docs <= indexed else "index compute"
            indexed |= docs
        elif kind == "agent GET":
            agent_gets += 1
            kind = "agent GET" if agent_gets == 1 else "agent re-read"
        counts[kind] += 1
    out = {k: counts[k] for k in ORDER if counts[k]}
    out["total"] = sum(counts.values())
    return out


def errors(calls: list[CallRow]) -> list[dict[str, Any]]:
    return [
        {"method": c.method, "path": c.path, "status": c.status} for c in calls if c.status >= 400
    ]


def nothing_formula(listed: int) -> int:
    """A run with nothing to do: 1 agent GET + one list page per 100 items: the managed
    documents and our folder (named like the namespace, the same listing finds it)."""
    return 1 + max(1, math.ceil((listed + 1) / 100))


def update_formula(listed: int, k: int, polls: int, superseded: int, computes: int = 0) -> int:
    """A k-document update: the read; 1 quota GET; the .kb-sync lookup; the lease (create,
    list); the read again under the lease; k creates; the index computes (batch requests of up
    to 100 documents: ceil(k/100) when the uploads end before a batch is due, more when they
    overlap; ``computes``, 0 = that ceiling) + polls; 1 agent re-read, 1 PATCH, 1 read-back
    GET; per superseded document 1 content GET + 1 DELETE; the lease's release; the run's
    record stored in .kb-sync (intent POST, done PATCH; pruned from the lease's listing: a
    part to delete once more than KB_SYNC_HISTORY runs are stored)."""
    read = nothing_formula(listed)
    lease = 1 + 1 + 1 + 1  # .kb-sync lookup, lease create, lease list, lease release
    stored = 1 + 1  # history: intent, done (pruning reads the lease's listing)
    computes = computes or math.ceil(k / 100)
    return 2 * read + 1 + lease + k + computes + polls + 1 + 1 + 1 + 2 * superseded + stored
