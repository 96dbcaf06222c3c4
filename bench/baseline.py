"""The handoff guide's serial algorithm, implemented faithfully with ``requests``.

One document at a time: create the text document, compute its RAG index, poll that index
until it is terminal, next document. Then one PATCH of the agent's ``knowledge_base`` (the
whole list, new versions in place of old ones), then the deletes of the old versions. Its
documents are named after their files, as the old script named them.

It polls at a fixed 0.5 s (the sync's own first interval): a baseline that polls slower would
only flatter the sync.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import requests

PENDING = ("new", "created", "processing")


def serial_push(
    base_url: str,
    api_key: str,
    agent_id: str,
    folder: Path,
    model: str,
    *,
    poll_interval: float = 0.5,
    index_timeout: float = 180.0,
) -> dict[str, Any]:
    api = base_url.rstrip("/") + "/v1/convai"
    s = requests.Session()
    s.headers["xi-api-key"] = api_key
    sent = 0

    def call(method: str, path: str, **kw: Any) -> Any:
        nonlocal sent
        sent += 1
        r = s.request(method, api + path, timeout=(5, 60), **kw)
        r.raise_for_status()
        return r.json() if r.content else None

    # the truth: the agent's list, and the documents already uploaded (to find old versions)
    agent = call("GET", f"/agents/{agent_id}")
    kb: list[dict[str, Any]] = agent["conversation_config"]["agent"]["prompt"].get(
        "knowledge_base", []
    )
    existing: dict[str, list[str]] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"page_size": 100}
        if cursor:
            params["cursor"] = cursor
        page = call("GET", "/knowledge-base", params=params)
        for d in page["documents"]:
            existing.setdefault(d["name"], []).append(d["id"])
        cursor = page.get("next_cursor")
        if not page.get("has_more") or not cursor:
            break

    new_entries: dict[str, dict[str, Any]] = {}
    statuses: dict[str, str] = {}
    for path in sorted(folder.glob("*.md")):
        name = path.stem
        text = path.read_text(encoding="utf-8")
        doc = call("POST", "/knowledge-base/text", json={"text": text, "name": name})
        idx = call("POST", f"/knowledge-base/{doc['id']}/rag-index", json={"model": model})
        deadline = time.monotonic() + index_timeout
        while idx["status"] in PENDING and time.monotonic() < deadline:
            time.sleep(poll_interval)
            idx = call("POST", f"/knowledge-base/{doc['id']}/rag-index", json={"model": model})
        statuses[name] = idx["status"]
        if idx["status"] == "succeeded":
            new_entries[name] = {
                "type": "text",
                "name": name,
                "id": doc["id"],
                "usage_mode": "auto",
            }

    # one PATCH: new versions in place of the old ones, new documents at the end
    old_ids = {i for n in new_entries for i in existing.get(n, [])}
    desired = []
    for e in kb:
        if e.get("name") in new_entries:
            desired.append(new_entries.pop(e["name"]))
        elif e.get("id") not in old_ids:
            desired.append(e)
    desired += list(new_entries.values())
    call(
        "PATCH",
        f"/agents/{agent_id}",
        json={"conversation_config": {"agent": {"prompt": {"knowledge_base": desired}}}},
    )
    for doc_id in sorted(old_ids):
        call("DELETE", f"/knowledge-base/{doc_id}")
    return {
        "requests_sent": sent,
        "indexed": sum(1 for v in statuses.values() if v == "succeeded"),
        "documents": len(statuses),
        "attached": len(desired),
    }
