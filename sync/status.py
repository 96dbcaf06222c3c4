"""`kb-sync status`: the agent's knowledge base as it is now."""

from __future__ import annotations

import contextlib
import json
from typing import Any, TextIO

from .client import Client
from .config import Settings
from .errors import ApiError
from .history_command import where, where_lines
from .remote import ownership, read_agent


def index_status(client: Client, doc_id: str, model: str) -> str:
    try:
        data = client.list_indexes(doc_id)
    except ApiError as exc:
        return f"unknown ({exc.code or exc.status})"
    for idx in data.get("indexes") or []:
        if idx.get("model") == model:
            return str(idx.get("status"))
    return "none"


def gather(client: Client, settings: Settings) -> dict[str, Any]:
    agent = read_agent(client, settings)
    model = agent.embedding_model or settings.embedding_model
    entries = []
    for e in agent.entries:
        m = ownership(settings).managed(e.name)
        size = None
        with contextlib.suppress(ApiError):
            size = (client.get_document(e.id).get("metadata") or {}).get("size_bytes")
        entries.append(
            {
                "name": e.raw.get("name"),
                "id": e.id,
                "owner": "kb-sync" if m else "unmanaged",
                "file": m.file if m else None,
                "usage_mode": e.usage_mode,
                "index": index_status(client, e.id, model)
                if e.usage_mode == "auto"
                else "not needed (prompt)",
                "size_bytes": size,
            }
        )
    place = where(client, settings)
    overview = client.rag_overview()
    try:
        kb_size = client.agent_kb_size(settings.agent_id)
    except ApiError:
        kb_size = {}
    return {
        "agent": {"id": settings.agent_id, "name": agent.name},
        "rag": {"enabled": agent.rag_enabled, "embedding_model": agent.embedding_model},
        "entries": entries,
        "quota": {
            "total_used_bytes": overview.get("total_used_bytes"),
            "total_max_bytes": overview.get("total_max_bytes"),
        },
        "agent_kb_pages": kb_size.get("number_of_pages"),
        **place.to_dict(),
    }


def status_command(client: Client, settings: Settings, out: TextIO, as_json: bool) -> int:
    data = gather(client, settings)
    if as_json:
        out.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        return 0
    a, q = data["agent"], data["quota"]
    out.write(f"Agent {a['name']} [{a['id']}]: {len(data['entries'])} knowledge-base entries\n")
    out.write(f"RAG: enabled={data['rag']['enabled']} model={data['rag']['embedding_model']}\n")
    for e in data["entries"]:
        out.write(
            f"  {e['owner']:9s} {e['usage_mode']:6s} {e['index']:20s} "
            f"{e['size_bytes'] if e['size_bytes'] is not None else '?':>8} B  "
            f"{e['name']} [{e['id']}]\n"
        )
    used, cap = q["total_used_bytes"], q["total_max_bytes"]
    pct = f" ({100 * used / cap:.1f}%)" if used is not None and cap else ""
    out.write(f"Workspace RAG quota: {used} of {cap} bytes used{pct}\n")
    out.writelines(line + "\n" for line in where_lines(data))
    return 0
