"""Typed values at the client edge: what ElevenLabs answers, read once, in one place.

* :class:`KbEntry`: one entry of an agent's knowledge base (a locator: id, name, type,
  usage mode). It keeps the server's own dict, so an entry kb-sync does not touch is sent
  back exactly as it came.
* :class:`AgentView`: the parts of an agent kb-sync uses (entries, RAG settings, model).
* :class:`RemoteDoc`: one item of the workspace's document list.
* :class:`Ownership`: the rule "owned = managed (named in our namespace) or adopted (an old
  script's upload this plan replaces)", and which local file an owned entry holds.

Everything else in the sync works on these values, never on ``dict[str, Any]`` from the wire.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .naming import ManagedName, parse

Json = dict[str, Any]


@dataclass(frozen=True)
class KbEntry:
    id: str
    name: str
    type: str = "text"
    usage_mode: str = "auto"
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KbEntry:
        return cls(
            id=str(data.get("id")),
            name=str(data.get("name", "")),
            type=str(data.get("type", "text")),
            usage_mode=str(data.get("usage_mode", "auto")),
            raw=dict(data),
        )

    @classmethod
    def locator(cls, doc_id: str, name: str, usage_mode: str) -> KbEntry:
        """A new entry, as kb-sync attaches it."""
        return cls(id=doc_id, name=name, type="text", usage_mode=usage_mode)

    def to_json(self) -> Json:
        """The entry as sent in a PATCH: the server's own dict when it came from there."""
        if self.raw:
            return dict(self.raw)
        return {"type": self.type, "name": self.name, "id": self.id, "usage_mode": self.usage_mode}

    def with_id(self, doc_id: str) -> KbEntry:
        """The same entry pointing at another document (a rollback's recreated copy)."""
        raw = {**self.raw, "id": doc_id} if self.raw else {}
        return KbEntry(doc_id, self.name, self.type, self.usage_mode, raw)


def entries_json(entries: Iterable[KbEntry]) -> list[Json]:
    return [e.to_json() for e in entries]


def entries_from(data: Iterable[Mapping[str, Any]]) -> tuple[KbEntry, ...]:
    return tuple(KbEntry.from_json(e) for e in data)


@dataclass(frozen=True)
class AgentView:
    id: str
    name: str
    entries: tuple[KbEntry, ...]
    rag_enabled: bool
    embedding_model: str | None
    branch_id: str | None = None
    kb_listed: bool = True  # the answer held a knowledge_base list (possibly empty)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], agent_id: str = "") -> AgentView:
        prompt = agent_prompt(data)
        rag = prompt.get("rag") or {}
        model = rag.get("embedding_model")
        branch = data.get("branch_id")
        listed = isinstance(prompt.get("knowledge_base"), list)
        return cls(
            id=str(data.get("agent_id") or agent_id),
            name=str(data.get("name", "")),
            entries=entries_from(prompt.get("knowledge_base") or []),
            rag_enabled=bool(rag.get("enabled", False)),
            embedding_model=str(model) if model else None,
            branch_id=str(branch) if branch else None,
            kb_listed=listed,
        )

    def ids(self) -> list[str]:
        return [e.id for e in self.entries]


def agent_prompt(data: Mapping[str, Any]) -> Json:
    """``conversation_config.agent.prompt`` of an agent answer ({} when absent)."""
    conv = data.get("conversation_config") or {}
    return dict((conv.get("agent") or {}).get("prompt") or {})


@dataclass(frozen=True)
class RemoteDoc:
    id: str
    name: str
    size_bytes: int | None = None
    type: str = "text"  # text | file | url | folder
    parent_id: str | None = None  # the folder it is directly in (None: the workspace root)
    created: int | None = None  # the server's clock, seconds

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RemoteDoc:
        meta = data.get("metadata") or {}
        size, created = meta.get("size_bytes"), meta.get("created_at_unix_secs")
        parent = data.get("folder_parent_id")
        return cls(
            id=str(data["id"]),
            name=str(data.get("name", "")),
            size_bytes=int(size) if isinstance(size, int) else None,
            type=str(data.get("type", "text")),
            parent_id=str(parent) if parent else None,
            created=int(created) if isinstance(created, int) else None,
        )

    @property
    def is_folder(self) -> bool:
        return self.type == "folder"


@dataclass(frozen=True)
class Layout:
    """Our knowledge-base folder (:mod:`sync.folders`)."""

    name: str  # the folder's name
    folder_id: str | None  # None: it does not exist yet (a plan says "will create folder")
    meta_id: str | None = None  # the .kb-sync sub-folder, when known
    # folder_id None and listed: the listing just read shows no such folder (a writing run
    # creates it without listing first; the listing after the create still settles a race)
    listed: bool = False
    # what .kb-sync held when the lease was taken (leases, stored runs), or None: unknown
    stored: tuple[RemoteDoc, ...] | None = None
    created: bool = False  # this run created the folder (its printed plan is made after)


@dataclass(frozen=True)
class Ownership:
    """What this run may change: managed entries, and legacy entries it adopts."""

    namespace: str
    adopted: Mapping[str, str] = field(default_factory=dict)  # legacy entry id -> local file
    legacy_namespace: str | None = None  # the old shared default, read as ours too

    def managed(self, name: str) -> ManagedName | None:
        m = parse(name, self.namespace)
        if m is None and self.legacy_namespace:
            m = parse(name, self.legacy_namespace)
        return m

    def owns(self, entry: KbEntry) -> bool:
        return self.managed(entry.name) is not None or entry.id in self.adopted

    def file_of(self, entry: KbEntry) -> str | None:
        m = self.managed(entry.name)
        if m is not None:
            return m.file
        return self.adopted.get(entry.id)

    def owned_ids(self, entries: Iterable[KbEntry]) -> list[str]:
        """The owned entries' ids in the agent's order: the stale-plan check compares them."""
        return [e.id for e in entries if self.owns(e)]
