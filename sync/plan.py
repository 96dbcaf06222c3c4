"""What a plan is: the snapshot it was made from, its items, how it prints (no I/O here).

Per local file the plan says ``create`` (no entry yet), ``update`` (the entry holds other
content), ``adopt`` (replace the old script's upload, with ``--adopt-legacy``), ``unchanged`` or
``skip`` (a small document under ``--small-docs skip``); per managed entry with no file,
``delete``. :mod:`sync.planner` makes plans.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .domain import AgentView, KbEntry, Layout, Ownership, RemoteDoc
from .guards import entry_limit_hint


@dataclass(frozen=True)
class Ref:
    id: str
    name: str
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "reason": self.reason}


@dataclass
class Snapshot:
    """What ElevenLabs holds now: the agent and the (namespace-narrowed) document list."""

    agent: AgentView
    docs: dict[str, RemoteDoc]  # id -> the managed-named documents of the workspace
    contents: dict[str, str] = field(default_factory=dict)  # id -> content (strict hash)
    formats: dict[str, str] = field(default_factory=dict)  # id -> content_format
    # managed-named docs another agent uses (a namespace shared by agents): never orphans
    foreign: set[str] = field(default_factory=set)
    layout: Layout = field(default_factory=lambda: Layout("", None))

    @property
    def kb(self) -> tuple[KbEntry, ...]:
        return self.agent.entries


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

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape (``dataclasses.asdict``'s, without its recursive deep copy)."""
        return {
            "action": self.action,
            "file": self.file,
            "name": self.name,
            "size_bytes": self.size_bytes,
            "usage_mode": self.usage_mode,
            "reuse_id": self.reuse_id,
            "replaces": [r.to_dict() for r in self.replaces],
            "reason": self.reason,
        }


@dataclass
class Plan:
    items: list[Item]
    orphans: list[Ref]
    legacy: list[Ref]  # entries that look like the old script's, left alone (no --adopt-legacy)
    managed_ids: list[str]  # owned entry ids of the agent at plan time, in order
    strict: bool = False
    ownership: Ownership = field(default_factory=lambda: Ownership(""))
    folder: Layout = field(default_factory=lambda: Layout("", None))
    moves: list[Ref] = field(default_factory=list)  # managed docs kept, outside the folder
    entries_after: int = 0  # the agent's knowledge-base entries once applied
    # files of the folder a person may take for synced ones (UPPER.MD, x.markdown): not synced
    unsynced: tuple[str, ...] = ()

    def is_stale(self, current: list[KbEntry] | tuple[KbEntry, ...]) -> bool:
        """The agent's owned entries are no longer those the plan was made on."""
        return self.ownership.owned_ids(current) != self.managed_ids

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
        return bool(self.to_add or self.to_change or self.to_destroy or self.moves)

    @property
    def creates_folder(self) -> bool:
        return self.folder.folder_id is None and bool(
            self.moves or any(i.needs_upload for i in self.items)
        )

    def summary(self) -> str:
        text = f"{self.to_add} to add, {self.to_change} to change, {self.to_destroy} to destroy"
        return text + (f", {len(self.moves)} to move" if self.moves else "")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, in one pass over each list (no deep copies)."""
        counts = Counter(i.action for i in self.items)
        return {
            "summary": {
                "add": counts["create"],
                "change": counts["update"] + counts["adopt"],
                "destroy": counts["delete"] + len(self.orphans),
                "unchanged": counts["unchanged"],
                "skip": counts["skip"],
                "text": self.summary(),
            },
            "strict_hash": self.strict,
            "folder": {
                "name": self.folder.name,
                "id": self.folder.folder_id,
                "create": self.creates_folder,
            },
            "entries_after": self.entries_after,
            "moves": [m.to_dict() for m in self.moves],
            "items": [i.to_dict() for i in self.items],
            "orphans": [o.to_dict() for o in self.orphans],
            "legacy": [o.to_dict() for o in self.legacy],
        } | ({"unsynced": list(self.unsynced)} if self.unsynced else {})

    def unsynced_note(self) -> list[str]:
        if not self.unsynced:
            return []
        n = len(self.unsynced)
        files, them = ("1 file looks", "it") if n == 1 else (f"{n} files look", "them")
        return [
            f"note: {files} like markdown but not synced (only *.md is): "
            f"{', '.join(self.unsynced)}; rename {them} to *.md to sync {them}"
        ]

    def render(self) -> str:
        marks = {
            "create": "+",
            "update": "~",
            "adopt": "~",
            "delete": "-",
            "unchanged": " ",
            "skip": "!",
        }
        groups: dict[str, list[Item]] = {
            a: [] for a in ("create", "update", "adopt", "delete", "skip", "unchanged")
        }
        for item in self.items:  # one pass; each group keeps the items' order
            if item.action in groups:
                groups[item.action].append(item)
        lines: list[str] = []
        for action, items in groups.items():
            if not items:
                continue
            lines.append(f"{action} ({len(items)}):")
            for i in items:
                detail = f"  {marks[action]} {i.file or i.name}"
                extra = []
                if i.reason:
                    extra.append(i.reason)
                if i.usage_mode == "prompt" and action not in ("delete", "skip"):
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
        lines.extend(self.unsynced_note())
        if self.moves:
            lines.append(f"move into folder {self.folder.name} ({len(self.moves)}):")
            lines.extend(f"  > {m.name} [{m.id}]" for m in self.moves)
        if self.creates_folder:
            lines.append(f"will create folder {self.folder.name} (and {self.folder.name}/.kb-sync)")
        hint = entry_limit_hint(self.entries_after)
        if hint:
            lines.append(
                f"note: the agent would hold {self.entries_after} knowledge-base entries; {hint}"
            )
        lines.append(f"Plan: {self.summary()}.")
        return "\n".join(lines)
