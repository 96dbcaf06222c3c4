"""The pure planner: local documents + a snapshot of ElevenLabs -> a plan. No I/O here.

Per local file the plan says ``create`` (no entry yet), ``update`` (the entry holds other
content), ``adopt`` (replace the old script's upload, with ``--adopt-legacy``), ``unchanged`` or
``skip`` (a small document under ``--small-docs skip``); per managed entry with no file,
``delete``. Managed documents attached nowhere (orphans of a failed run) are reused when they
hold the right content, and cleaned up otherwise.
"""

from __future__ import annotations

import html
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from .local import LocalDoc
from .naming import legacy_keys, managed_name, parse

SMALL_POLICIES = ("prompt", "skip", "fail")


@dataclass(frozen=True)
class Ref:
    id: str
    name: str
    reason: str = ""


@dataclass
class Snapshot:
    """What ElevenLabs holds now: the agent and the (namespace-narrowed) document list."""

    agent_id: str
    agent_name: str
    kb: list[dict[str, Any]]
    rag_enabled: bool
    embedding_model: str | None
    docs: dict[str, dict[str, Any]]  # id -> list item (name, metadata.size_bytes, ...)
    contents: dict[str, str] = field(default_factory=dict)  # id -> content (strict hash)
    formats: dict[str, str] = field(default_factory=dict)  # id -> content_format
    # managed-named docs another agent uses (a namespace shared by agents): never orphans
    foreign: set[str] = field(default_factory=set)


@dataclass
class Item:
    action: str  # create | update | adopt | unchanged | delete | skip
    file: str | None
    name: str | None = None  # the managed name of the version to attach
    size_bytes: int = 0
    usage_mode: str = "auto"
    reuse_id: str | None = None  # an existing document holding this version
    replaces: list[Ref] = field(default_factory=list)  # entries this item detaches
    reason: str = ""

    @property
    def needs_upload(self) -> bool:
        return self.action in ("create", "update", "adopt") and self.reuse_id is None


@dataclass
class Plan:
    items: list[Item]
    orphans: list[Ref]
    legacy: list[Ref]  # entries that look like the old script's, left alone (no --adopt-legacy)
    managed_ids: list[str]  # managed entry ids of the agent at plan time, in order
    strict: bool = False

    def count(self, *actions: str) -> int:
        return sum(1 for i in self.items if i.action in actions)

    @property
    def to_add(self) -> int:
        return self.count("create")

    @property
    def to_change(self) -> int:
        return self.count("update", "adopt")

    @property
    def to_destroy(self) -> int:
        return self.count("delete") + len(self.orphans)

    @property
    def has_changes(self) -> bool:
        return bool(self.to_add or self.to_change or self.to_destroy)

    def summary(self) -> str:
        return f"{self.to_add} to add, {self.to_change} to change, {self.to_destroy} to destroy"

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": {
                "add": self.to_add,
                "change": self.to_change,
                "destroy": self.to_destroy,
                "unchanged": self.count("unchanged"),
                "skip": self.count("skip"),
                "text": self.summary(),
            },
            "strict_hash": self.strict,
            "items": [asdict(i) for i in self.items],
            "orphans": [asdict(o) for o in self.orphans],
            "legacy": [asdict(o) for o in self.legacy],
        }

    def render(self) -> str:
        marks = {
            "create": "+",
            "update": "~",
            "adopt": "~",
            "delete": "-",
            "unchanged": " ",
            "skip": "!",
        }
        groups = ("create", "update", "adopt", "delete", "skip", "unchanged")
        lines: list[str] = []
        for action in groups:
            items = [i for i in self.items if i.action == action]
            if not items:
                continue
            lines.append(f"{action} ({len(items)}):")
            for i in items:
                detail = f"  {marks[action]} {i.file or i.name}"
                extra = []
                if i.reason:
                    extra.append(i.reason)
                if i.usage_mode == "prompt" and action != "delete":
                    extra.append("usage_mode=prompt")
                if i.reuse_id and action != "unchanged":
                    extra.append(f"reuses {i.reuse_id}")
                if i.replaces and action != "delete":
                    extra.append("replaces " + ", ".join(r.id for r in i.replaces))
                if action == "delete" and i.replaces:
                    extra.append(", ".join(r.id for r in i.replaces))
                if extra:
                    detail += f"  ({'; '.join(extra)})"
                lines.append(detail)
        if self.orphans:
            lines.append(f"cleanup ({len(self.orphans)}):")
            lines.extend(f"  - {o.name} [{o.id}] ({o.reason})" for o in self.orphans)
        if self.legacy:
            lines.append(
                f"note: {len(self.legacy)} unmanaged entries are named like local files "
                "(the old script's uploads); --adopt-legacy replaces them:"
            )
            lines.extend(f"    {o.name} [{o.id}]" for o in self.legacy)
        lines.append(f"Plan: {self.summary()}.")
        return "\n".join(lines)


_TAG = re.compile(r"<[^>]+>")
_MD_LINE = re.compile(r"^\s*(?:#{1,6}\s+|[-*+]\s+|>\s*|\d+[.)]\s+|\|?[\s:|-]*-{3,}[\s:|-]*$)")
_MD_INLINE = re.compile(r"\*\*|__|`+|\s\|\s|^\||\|$")


def _visible(text: str) -> str:
    """Words as a reader sees them: tags and markdown markup gone, data kept ("-5%" stays)."""
    lines = []
    for line in html.unescape(_TAG.sub("\n", text)).splitlines():
        line = _MD_INLINE.sub(" ", _MD_LINE.sub("", line.strip()))
        lines.append(line)
    return " ".join(" ".join(lines).split())


def same_content(local: str, remote: str, content_format: str | None) -> bool:
    """Exact for markdown; for legacy HTML content, compare the visible text [guess]."""
    if remote.replace("\r\n", "\n") == local:
        return True
    if remote.rstrip("\n") == local.rstrip("\n"):
        return True
    return content_format == "html" and _visible(remote) == _visible(local)


def doc_size(doc: dict[str, Any]) -> int | None:
    size = (doc.get("metadata") or {}).get("size_bytes")
    return int(size) if isinstance(size, int) else None


def content_reads(local: list[LocalDoc], snap: Snapshot, namespace: str, strict: bool) -> list[str]:
    """Ids whose content ``--strict-hash`` must read: managed docs of a local file whose
    fingerprint and size both match (the only case where the name could be trusted)."""
    if not strict:
        return []
    by_file = {d.file: d for d in local}
    ids: list[str] = []
    for doc_id, doc in snap.docs.items():
        m = parse(str(doc.get("name", "")), namespace)
        if m is None or m.file not in by_file:
            continue
        ld = by_file[m.file]
        if m.fingerprint == ld.fingerprint and doc_size(doc) == ld.size_bytes:
            ids.append(doc_id)
    return ids


def make_plan(
    local: list[LocalDoc],
    snap: Snapshot,
    *,
    namespace: str,
    strict: bool = False,
    small_docs: str = "prompt",
    adopt_legacy: bool = False,
) -> Plan:
    def matches(doc_id: str, ld: LocalDoc) -> bool:
        doc = snap.docs.get(doc_id)
        if doc is None:  # attached but not listed: cannot be trusted
            return False
        m = parse(str(doc.get("name", "")), namespace)
        if m is None or m.fingerprint != ld.fingerprint or doc_size(doc) != ld.size_bytes:
            return False
        if strict:
            content = snap.contents.get(doc_id)
            return content is not None and same_content(ld.text, content, snap.formats.get(doc_id))
        return True

    by_file = {d.file: d for d in local}
    legacy_owner: dict[str, str] = {}
    for d in local:
        for k in legacy_keys(d.file):
            legacy_owner.setdefault(k, d.file)

    attached: dict[str, list[dict[str, Any]]] = {}  # file -> managed entries, agent order
    legacy_attached: dict[str, list[dict[str, Any]]] = {}
    legacy_notes: list[Ref] = []
    attached_ids: set[str] = set()
    for entry in snap.kb:
        eid = str(entry.get("id"))
        attached_ids.add(eid)
        m = parse(str(entry.get("name", "")), namespace)
        if m is not None:
            attached.setdefault(m.file, []).append(entry)
            continue
        owner = legacy_owner.get(str(entry.get("name", "")))
        if owner is not None and entry.get("type", "text") == "text":
            if adopt_legacy:
                legacy_attached.setdefault(owner, []).append(entry)
            else:
                legacy_notes.append(Ref(eid, str(entry.get("name")), f"looks like {owner}"))

    # orphans: managed docs in the workspace that the agent does not reference
    orphan_docs = {
        doc_id: doc
        for doc_id, doc in snap.docs.items()
        if doc_id not in attached_ids and parse(str(doc.get("name", "")), namespace)
    }
    reused: set[str] = set()
    items: list[Item] = []
    for ld in local:
        mode = "prompt" if ld.small else "auto"
        name = managed_name(namespace, ld.file, ld.fingerprint)
        entries = attached.get(ld.file, [])
        legacy_entries = legacy_attached.get(ld.file, [])
        if ld.small and small_docs == "skip":
            items.append(Item("skip", ld.file, name, ld.size_bytes, mode, reason="under 500 bytes"))
            continue
        keep = next((e for e in entries if matches(str(e["id"]), ld)), None)
        if keep is not None and not legacy_entries:
            dups = [
                Ref(str(e["id"]), str(e.get("name")), "duplicate") for e in entries if e is not keep
            ]
            mode_ok = keep.get("usage_mode", "auto") == mode
            if not dups and mode_ok:
                items.append(
                    Item("unchanged", ld.file, name, ld.size_bytes, mode, reuse_id=str(keep["id"]))
                )
                continue
            reasons = []
            if dups:
                reasons.append(f"{len(dups)} duplicate entr{'y' if len(dups) == 1 else 'ies'}")
            if not mode_ok:
                reasons.append(f"usage_mode {keep.get('usage_mode', 'auto')} -> {mode}")
            items.append(
                Item(
                    "update",
                    ld.file,
                    name,
                    ld.size_bytes,
                    mode,
                    reuse_id=str(keep["id"]),
                    replaces=dups,
                    reason=", ".join(reasons),
                )
            )
            continue
        reuse = next(
            (i for i in orphan_docs if i not in reused and matches(i, ld)),
            None,
        )
        if reuse is None and keep is not None:
            reuse = str(keep["id"])
        if reuse is not None:
            reused.add(reuse)
        replaces = [
            Ref(str(e["id"]), str(e.get("name")), "old version")
            for e in entries
            if str(e["id"]) != reuse
        ] + [Ref(str(e["id"]), str(e.get("name")), "legacy upload") for e in legacy_entries]
        if legacy_entries:
            action, reason = "adopt", "replaces the old script's upload"
        elif entries:
            action, reason = "update", "content changed"
        else:
            action, reason = "create", "new file"
        items.append(Item(action, ld.file, name, ld.size_bytes, mode, reuse, replaces, reason))

    for file, entries in attached.items():
        if file in by_file:
            continue
        items.append(
            Item(
                "delete",
                file,
                str(entries[0].get("name")),
                replaces=[Ref(str(e["id"]), str(e.get("name")), "file removed") for e in entries],
                reason="file removed",
            )
        )
    orphans = [
        Ref(i, str(d.get("name")), "orphan: attached nowhere")
        for i, d in sorted(orphan_docs.items(), key=lambda kv: str(kv[1].get("name")))
        if i not in reused and i not in snap.foreign  # another agent's: reusable, not ours to clean
    ]
    # the entries this plan may touch, in the agent's order: the stale-plan check compares them
    adopted = {r.id for i in items if i.action == "adopt" for r in i.replaces}
    managed_ids = [
        str(e.get("id"))
        for e in snap.kb
        if parse(str(e.get("name", "")), namespace) or str(e.get("id")) in adopted
    ]
    return Plan(items, orphans, legacy_notes, managed_ids, strict)
