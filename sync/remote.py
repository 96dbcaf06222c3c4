"""Reading the truth from ElevenLabs: the agent and the managed documents."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .answers import Pages
from .client import Client
from .config import Settings
from .content import same_content
from .domain import AgentView, Ownership, RemoteDoc
from .errors import ApiError, ConfigError, NotFound
from .folders import Layout, root_folder
from .local import LocalDoc
from .log import event
from .naming import parse, prefix
from .plan import Snapshot
from .planner import content_reads


def read_agent_json(client: Client, settings: Settings) -> dict[str, Any]:
    try:
        return client.get_agent(settings.agent_id)
    except NotFound:
        raise ConfigError(
            f"ELEVENLABS_AGENT_ID={settings.agent_id}: no such agent in this workspace "
            "(404); check the id and that the API key belongs to the agent's workspace"
        ) from None


def read_agent(client: Client, settings: Settings) -> AgentView:
    agent = AgentView.from_json(read_agent_json(client, settings), settings.agent_id)
    if not agent.kb_listed:  # read as empty, a PATCH would detach every unmanaged entry
        raise ApiError(
            f"agent {settings.agent_id}: the answer has no "
            "conversation_config.agent.prompt.knowledge_base list; nothing was written; "
            "check ELEVENLABS_BASE_URL points at the ElevenLabs API and try again"
        )
    return agent


def foreign_docs(client: Client, settings: Settings, snap: Snapshot) -> set[str]:
    """Managed-named docs this agent does not reference but another agent (or branch) does:
    agents sharing a namespace must not see each other's documents as orphans. One request per
    such doc; there are none when each agent has its own namespace."""
    attached = {e.id for e in snap.kb}
    out: set[str] = set()
    for doc_id, doc in snap.docs.items():
        if doc_id in attached or parse(doc.name, settings.namespace) is None:
            continue
        try:
            users = other_dependents(client, doc_id, settings.agent_id)
        except ApiError:
            users = ["unknown"]
        if users:
            out.add(doc_id)
    return out


def other_dependents(client: Client, doc_id: str, agent_id: str) -> list[str]:
    """Every agent or branch other than ``agent_id``'s main branch that uses the doc (all
    pages). A branch entry is ``{agent_id, agent_name, branch_id, branch_name, is_main}``:
    our agent's main branch is us; any other branch, of our agent or another, still uses it."""
    others: list[str] = []
    cursor: str | None = None
    pages = Pages(f"GET dependent-agents of {doc_id}")
    while True:
        deps = client.dependent_agents(doc_id, cursor=cursor)
        for a in deps.get("agents") or []:
            if a.get("type") == "unknown":
                others.append("an agent you cannot see")
            elif a.get("id") != agent_id:
                others.append(f"agent {a.get('id')}")
        for b in deps.get("branches") or []:
            if not isinstance(b, dict):
                others.append(f"branch {b}")
            elif b.get("agent_id") != agent_id or not b.get("is_main"):
                others.append(f"branch {b.get('branch_id')} of agent {b.get('agent_id')}")
        cursor = pages.next(deps)
        if cursor is None:
            return others


def ownership(settings: Settings) -> Ownership:
    return Ownership(settings.namespace, legacy_namespace=settings.legacy_namespace)


def read_documents(
    client: Client,
    settings: Settings,
    attached: frozenset[str] = frozenset(),
    legacy_in_use: bool = True,
) -> tuple[dict[str, RemoteDoc], Layout]:
    """The managed-named documents and where our folder is (read-only). With the default
    folder (named after the namespace) one listing finds both: ``ns`` prefixes ``ns:``; and
    with the old default adopted, ``kb-sync`` prefixes them all. Documents of the old default
    count only when this agent uses them (``attached``): the others may be another agent's,
    so when the agent holds none (``legacy_in_use`` False) the listing keeps to its own
    namespace, and other agents' documents cost no page."""
    ns_prefix = prefix(settings.namespace).casefold()
    legacy = settings.legacy_namespace if legacy_in_use else None
    search = legacy or settings.namespace
    one_listing = settings.folder.startswith(search)
    if not one_listing:
        search = legacy or prefix(settings.namespace)
    listed = [RemoteDoc.from_json(d) for d in client.list_documents(search=search)]

    def ours(d: RemoteDoc) -> bool:
        if d.is_folder:
            return False
        if d.name.casefold().startswith(ns_prefix):
            return True
        return bool(legacy) and d.id in attached and parse(d.name, str(legacy)) is not None

    docs = {d.id: d for d in listed if ours(d)}
    if not one_listing:
        listed = [
            RemoteDoc.from_json(d)
            for d in client.list_documents(settings.folder, types=("folder",))
        ]
    folder = root_folder(listed, settings.folder)
    return docs, Layout(settings.folder, folder.id if folder else None, listed=True)


def take_snapshot(
    client: Client,
    settings: Settings,
    local: list[LocalDoc],
    *,
    strict: bool = False,
    concurrency: int = 4,
) -> Snapshot:
    agent = read_agent(client, settings)
    old = settings.legacy_namespace
    in_use = bool(old) and any(parse(e.name, str(old)) for e in agent.entries)
    docs, layout = read_documents(client, settings, frozenset(agent.ids()), in_use)
    snap = Snapshot(agent=agent, docs=docs, layout=layout)
    by_file = {d.file: d for d in local}
    ids = content_reads(local, snap, settings.namespace, strict, settings.legacy_namespace)

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
        m = ownership(settings).managed(docs[doc_id].name)
        ld = by_file.get(m.file) if m else None
        if ld is not None and not same_content(ld.text, content, None):
            try:  # only a mismatch needs the format, to compare legacy HTML fairly
                snap.formats[doc_id] = str(
                    client.get_document(doc_id).get("content_format", "html")
                )
            except ApiError as exc:
                event("strict.format_unknown", logging.WARNING, id=doc_id, error=exc.code)
    snap.foreign = foreign_docs(client, settings, snap)
    event(
        "remote.read",
        agent=settings.agent_id,
        kb_entries=len(snap.kb),
        managed_docs=len(docs),
        content_reads=len(snap.contents),
        managed_bytes=sum(d.size_bytes or 0 for d in docs.values()),
    )
    return snap
