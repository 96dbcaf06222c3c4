"""Reading the truth from ElevenLabs: the agent and the managed documents."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .client import Client
from .config import Settings
from .errors import ApiError, ConfigError, NotFound
from .local import LocalDoc
from .log import event
from .naming import parse, prefix
from .plan import Snapshot, content_reads, doc_size, same_content


def agent_prompt(agent: dict[str, Any]) -> dict[str, Any]:
    conv = agent.get("conversation_config") or {}
    return dict((conv.get("agent") or {}).get("prompt") or {})


def agent_kb(agent: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(e) for e in agent_prompt(agent).get("knowledge_base") or []]


def read_agent(client: Client, settings: Settings) -> dict[str, Any]:
    try:
        return client.get_agent(settings.agent_id)
    except NotFound:
        raise ConfigError(
            f"ELEVENLABS_AGENT_ID={settings.agent_id}: no such agent in this workspace "
            "(404); check the id and that the API key belongs to the agent's workspace"
        ) from None


def take_snapshot(
    client: Client,
    settings: Settings,
    local: list[LocalDoc],
    *,
    strict: bool = False,
    concurrency: int = 4,
) -> Snapshot:
    agent = read_agent(client, settings)
    prompt = agent_prompt(agent)
    rag = prompt.get("rag") or {}
    docs = {str(d["id"]): d for d in client.list_documents(search=prefix(settings.namespace))}
    snap = Snapshot(
        agent_id=settings.agent_id,
        agent_name=str(agent.get("name", "")),
        kb=agent_kb(agent),
        rag_enabled=bool(rag.get("enabled", False)),
        embedding_model=rag.get("embedding_model"),
        docs=docs,
    )
    by_file = {d.file: d for d in local}
    ids = content_reads(local, snap, settings.namespace, strict)

    def read(doc_id: str) -> tuple[str, str | None]:
        try:
            return doc_id, client.get_content(doc_id)
        except NotFound:
            return doc_id, None

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        fetched = list(pool.map(read, ids))
    for doc_id, content in fetched:
        if content is None:
            continue
        snap.contents[doc_id] = content
        m = parse(str(docs[doc_id].get("name", "")), settings.namespace)
        ld = by_file.get(m.file) if m else None
        if ld is not None and not same_content(ld.text, content, None):
            try:  # only a mismatch needs the format, to compare legacy HTML fairly
                snap.formats[doc_id] = str(
                    client.get_document(doc_id).get("content_format", "html")
                )
            except ApiError as exc:
                event("strict.format_unknown", logging.WARNING, id=doc_id, error=exc.code)
    event(
        "remote.read",
        agent=settings.agent_id,
        kb_entries=len(snap.kb),
        managed_docs=len(docs),
        content_reads=len(snap.contents),
        managed_bytes=sum(doc_size(d) or 0 for d in docs.values()),
    )
    return snap
