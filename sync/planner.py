"""The pure planner: local documents + a snapshot of ElevenLabs -> a plan; and the decisions
the apply takes from the plan and what happened (the list to PATCH, the delete set). No I/O.

Managed documents attached nowhere (orphans of a failed run) are reused when they hold the
right content, and cleaned up otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .content import same_content
from .domain import KbEntry, Ownership, RemoteDoc
from .local import LocalDoc
from .naming import legacy_keys, managed_name
from .plan import Item, Plan, Ref, Snapshot
from .results import DocResult, is_pending


def content_reads(
    local: list[LocalDoc],
    snap: Snapshot,
    namespace: str,
    strict: bool,
    legacy_namespace: str | None = None,
) -> list[str]:
    """Ids whose content the plan must read: managed docs of a local file whose fingerprint
    and size both match (the only case where the name could be trusted), with
    ``--strict-hash`` all of them, without it the orphans only (a reused orphan is attached
    without an upload: what a person made of it in the UI would reach the agent unseen)."""
    by_file = {d.file: d for d in local}
    own = Ownership(namespace, legacy_namespace=legacy_namespace)
    attached = set(snap.agent.ids())
    ids: list[str] = []
    for doc_id, doc in snap.docs.items():
        m = own.managed(doc.name)
        if m is None or m.file not in by_file or not (strict or doc_id not in attached):
            continue
        ld = by_file[m.file]
        if m.fingerprint == ld.fingerprint and doc.size_bytes == ld.size_bytes:
            ids.append(doc_id)
    return ids


@dataclass
class _Reading:
    """The agent's entries sorted by what they are to this plan."""

    attached: dict[str, list[KbEntry]] = field(default_factory=dict)  # file -> managed entries
    legacy: dict[str, list[KbEntry]] = field(default_factory=dict)  # file -> adopted entries
    notes: list[Ref] = field(default_factory=list)  # legacy look-alikes left alone
    ids: set[str] = field(default_factory=set)


def _read_entries(
    local: list[LocalDoc], snap: Snapshot, own: Ownership, adopt_legacy: bool
) -> _Reading:
    legacy_owner: dict[str, str] = {}
    for d in local:
        for k in legacy_keys(d.file):
            legacy_owner.setdefault(k, d.file)
    out = _Reading()
    for entry in snap.kb:
        out.ids.add(entry.id)
        m = own.managed(entry.name)
        if m is not None:
            out.attached.setdefault(m.file, []).append(entry)
            continue
        owner = legacy_owner.get(entry.name)
        if owner is not None and entry.type == "text":
            if adopt_legacy:
                out.legacy.setdefault(owner, []).append(entry)
            else:
                out.notes.append(Ref(entry.id, entry.name, f"looks like {owner}"))
    return out


class _Planner:
    def __init__(self, snap: Snapshot, own: Ownership, strict: bool) -> None:
        self.snap, self.own, self.strict = snap, own, strict
        self.reused: set[str] = set()

    def matches(self, doc_id: str, ld: LocalDoc, *, read: bool = False) -> bool:
        """The doc holds this version: by name and size, and by its content read back when
        ``--strict-hash`` or ``read`` (an orphan about to be reused) asks."""
        doc: RemoteDoc | None = self.snap.docs.get(doc_id)
        if doc is None:  # attached but not listed: cannot be trusted
            return False
        m = self.own.managed(doc.name)
        if m is None or m.fingerprint != ld.fingerprint or doc.size_bytes != ld.size_bytes:
            return False
        if self.strict or read:
            content = self.snap.contents.get(doc_id)
            fmt = self.snap.formats.get(doc_id)
            return content is not None and same_content(ld.text, content, fmt)
        return True

    def kept(self, ld: LocalDoc, name: str, mode: str, entries: list[KbEntry]) -> Item | None:
        """The file's current entry holds this version: unchanged, or only tidied up."""
        keep = next((e for e in entries if self.matches(e.id, ld)), None)
        if keep is None:
            return None
        dups = [Ref(e.id, e.name, "duplicate") for e in entries if e is not keep]
        mode_ok = keep.usage_mode == mode
        if not dups and mode_ok:
            return Item("unchanged", ld.file, name, ld.size_bytes, mode, reuse_id=keep.id)
        reasons = []
        if dups:
            reasons.append(f"{len(dups)} duplicate entr{'y' if len(dups) == 1 else 'ies'}")
        if not mode_ok:
            reasons.append(f"usage_mode {keep.usage_mode} -> {mode}")
        return Item(
            "update",
            ld.file,
            name,
            ld.size_bytes,
            mode,
            reuse_id=keep.id,
            replaces=dups,
            reason=", ".join(reasons),
        )

    def changed(
        self,
        ld: LocalDoc,
        name: str,
        mode: str,
        entries: list[KbEntry],
        legacy: list[KbEntry],
        orphans: Mapping[str, RemoteDoc],
    ) -> Item:
        reuse = next(
            (i for i in orphans if i not in self.reused and self.matches(i, ld, read=True)), None
        )
        keep = next((e for e in entries if self.matches(e.id, ld)), None)
        if reuse is None and keep is not None:
            reuse = keep.id
        if reuse is not None:
            self.reused.add(reuse)
        replaces = [Ref(e.id, e.name, "old version") for e in entries if e.id != reuse] + [
            Ref(e.id, e.name, "legacy upload") for e in legacy
        ]
        if legacy:
            action, reason = "adopt", "replaces the old script's upload"
        elif entries:
            action, reason = "update", "content changed"
        else:
            action, reason = "create", "new file"
        return Item(action, ld.file, name, ld.size_bytes, mode, reuse, replaces, reason)


def make_plan(
    local: list[LocalDoc],
    snap: Snapshot,
    *,
    namespace: str,
    strict: bool = False,
    small_docs: str = "prompt",
    adopt_legacy: bool = False,
    legacy_namespace: str | None = None,
) -> Plan:
    base = Ownership(namespace, legacy_namespace=legacy_namespace)
    reading = _read_entries(local, snap, base, adopt_legacy)
    # orphans: managed docs in the workspace that the agent does not reference
    orphan_docs = {
        doc_id: doc
        for doc_id, doc in snap.docs.items()
        if doc_id not in reading.ids and base.managed(doc.name)
    }
    planner = _Planner(snap, base, strict)
    items: list[Item] = []
    for ld in local:
        mode = "prompt" if ld.small else "auto"
        name = managed_name(namespace, ld.file, ld.fingerprint)
        entries = reading.attached.get(ld.file, [])
        legacy = reading.legacy.get(ld.file, [])
        if ld.small and small_docs == "skip":
            items.append(Item("skip", ld.file, name, ld.size_bytes, mode, reason="under 500 bytes"))
            continue
        kept = None if legacy else planner.kept(ld, name, mode, entries)
        items.append(kept or planner.changed(ld, name, mode, entries, legacy, orphan_docs))
    local_files = {d.file for d in local}
    items += [
        Item(
            "delete",
            file,
            entries[0].name,
            replaces=[Ref(e.id, e.name, "file removed") for e in entries],
            reason="file removed",
        )
        for file, entries in reading.attached.items()
        if file not in local_files
    ]
    orphans = [
        Ref(i, d.name, "orphan: attached nowhere")
        for i, d in sorted(orphan_docs.items(), key=lambda kv: kv[1].name)
        if i not in planner.reused and i not in snap.foreign  # another agent's: not ours
    ]
    adopted = {r.id: str(i.file) for i in items if i.action == "adopt" for r in i.replaces}
    own = Ownership(namespace, adopted, legacy_namespace)
    managed_ids = own.owned_ids(snap.kb)
    moves = _moves(snap, items)
    unmanaged = sum(1 for e in snap.kb if e.id not in set(managed_ids))
    after = unmanaged + sum(1 for i in items if i.action not in ("delete", "skip"))
    return Plan(items, orphans, reading.notes, managed_ids, strict, own, snap.layout, moves, after)


def _moves(snap: Snapshot, items: list[Item]) -> list[Ref]:
    """Managed documents this run keeps (in use or reused) that are not in our folder: an
    earlier version uploaded them to the workspace root. Moved in, never uploaded again."""
    out: list[Ref] = []
    for i in items:
        doc = snap.docs.get(i.reuse_id) if i.reuse_id else None
        folder = snap.layout.folder_id
        if doc is not None and (folder is None or doc.parent_id != folder):
            out.append(Ref(doc.id, doc.name, f"into folder {snap.layout.name}"))
    return out


# -- decisions the apply takes ------------------------------------------------------------


def desired_kb(
    current: Sequence[KbEntry], plan: Plan, results: Sequence[DocResult]
) -> list[KbEntry]:
    """The complete list to PATCH: each file whose new version is ready takes its first
    entry's place (older versions and duplicates go), removed files go, everything else
    (unmanaged entries, files whose change did not make it) stays as it is, in place.
    Marks the results it attaches."""
    by_file = {r.item.file: r for r in results}
    deleted_files = {i.file for i in plan.items if i.action == "delete"}
    out: list[KbEntry] = []
    attached: set[str] = set()
    for entry in current:
        file = plan.ownership.file_of(entry)
        if file is None:
            out.append(entry)  # unmanaged: untouched, in place
            continue
        if file in deleted_files:
            continue
        r = by_file.get(file)
        if r is not None and r.ready:
            if file not in attached:  # the new version takes the first entry's place
                out.append(r.locator())
                r.attached = True
                attached.add(file)
            continue  # older versions and duplicates go
        out.append(entry)  # no change, or it did not make it: every entry stays as is
    for r in results:
        if r.item.file not in attached and r.ready:
            out.append(r.locator())
            r.attached = True
            attached.add(str(r.item.file))
    return out


def needs_patch(current: Sequence[KbEntry], desired: Sequence[KbEntry]) -> bool:
    return [(e.id, e.usage_mode) for e in desired] != [(e.id, e.usage_mode) for e in current]


def delete_set(plan: Plan, results: Sequence[DocResult], kept: Sequence[KbEntry]) -> list[Ref]:
    """What is superseded and no longer referenced by the agent after the PATCH."""
    keep_ids = {e.id for e in kept}
    by_item = {id(r.item): r for r in results}
    out: list[Ref] = []
    for i in plan.items:
        res = by_item.get(id(i))
        if i.action == "delete" or (res is not None and res.attached):
            out += [ref for ref in i.replaces if ref.id not in keep_ids]
    out += [o for o in plan.orphans if o.id not in keep_ids]
    for r in results:  # this run's uploads that did not make it, and will not
        if r.uploaded and not r.attached and r.doc_id and not is_pending(r.status):
            out.append(Ref(r.doc_id, str(r.item.name), f"not attached: {r.status}"))
        elif (  # an orphan reused from an earlier run, still not indexed: start afresh
            r.item.reuse_id
            and r.item.reuse_id not in plan.managed_ids
            and not r.attached
            and is_pending(r.status)
        ):
            out.append(Ref(r.item.reuse_id, str(r.item.name), f"still {r.status} a run later"))
    return out
