"""The pure half of a rollback: the run record and the agent now -> a :class:`RollbackPlan`
(what to recreate, what to delete, what stays), with its rendering. No I/O: the command and
its apply phases are in :mod:`sync.rollback`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .domain import KbEntry, Ownership, entries_from
from .errors import SyncError

__all__ = ["RollbackPlan", "plan_rollback", "record_ownership"]


@dataclass
class RollbackPlan:
    path: str
    run_id: str
    before: tuple[KbEntry, ...]
    current: tuple[KbEntry, ...]
    ownership: Ownership
    recreate: list[KbEntry] = field(default_factory=list)
    extra: list[KbEntry] = field(default_factory=list)  # unmanaged, added since: kept
    removed_since: list[KbEntry] = field(default_factory=list)  # unmanaged, removed since
    created: dict[str, str] = field(default_factory=dict)  # id -> name: the push's uploads
    saved: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # deleted docs an earlier rollback of this record already recreated: old id -> that copy
    reuse: Mapping[str, str] = field(default_factory=dict)
    # managed entries attached now that the restored list leaves out and the run did not create
    # (a later run's, or one pushed from another folder): deleted after the PATCH, like those
    # the run created, their content saved first; never left detached in the workspace
    detach: list[KbEntry] = field(default_factory=list)
    # the agent's entries now differ from the ones the run left (kb_after): someone or
    # something changed it since (a later run, another folder, a person)
    changed_since: bool = False
    # newer stored runs passed over: they did not change the agent (sync.rollback_source)
    skipped: list[dict[str, str]] = field(default_factory=list)
    # what skipped incomplete runs uploaded and left attached nowhere: id -> name, deleted too
    leftovers: dict[str, str] = field(default_factory=dict)
    refused: str = ""  # a dry run's: the guard's line the real run would stop with

    @staticmethod
    def skipped_lines(skipped: Iterable[Mapping[str, str]]) -> str:
        return "".join(
            f"note: skipped stored run {s['id']} ({s['kind']}, {s['time']}): {s['why']}\n"
            for s in skipped
        )

    def render_skipped(self) -> str:
        return self.skipped_lines(self.skipped)

    def summary(self) -> str:
        fresh = len(self.recreate) - len(self.reuse)
        parts = [f"{fresh} to recreate"] + ([f"{len(self.reuse)} to reuse"] if self.reuse else [])
        more = f", detach and delete {len(self.detach)} attached since" if self.detach else ""
        more += f", delete {len(self.leftovers)} left by skipped runs" if self.leftovers else ""
        return (
            f"Rollback: restore {len(self.before)} entries ({', '.join(parts)}), "
            f"delete {len(self.created)} created by run {self.run_id}{more}"
        )

    def removing(self) -> tuple[int, int]:
        """(managed entries the agent loses, managed entries it has now): the mass-delete
        rule's numbers."""
        now = sum(1 for e in self.current if self.ownership.owns(e))
        kept = sum(1 for e in self.before if self.ownership.owns(e))
        return max(0, now - kept), now

    def steps(self) -> dict[str, Any]:
        def refs(es: Iterable[KbEntry]) -> list[dict[str, Any]]:
            return [{"id": e.id, "name": e.raw.get("name")} for e in es]

        return {
            "record": self.path,
            "restore": refs(self.before),
            "recreate": refs(e for e in self.recreate if e.id not in self.reuse),
            "keep_unmanaged_added_since": refs(self.extra),
            "unmanaged_removed_since_stay_removed": refs(self.removed_since),
            "delete_created": list(self.created),
            "detach_and_delete": refs(self.detach),
            "reuse": dict(self.reuse),
            "agent_changed_since_the_run": self.changed_since,
            "skipped_runs": list(self.skipped),
            "delete_left_by_skipped_runs": list(self.leftovers),
            "would_be_refused": self.refused or None,
        }

    def render(self) -> str:
        lines = [self.render_skipped() + self.summary()]
        lines += [
            f"  ~ reuse {e.name} ({self.reuse[e.id]}, recreated by an earlier rollback)"
            if e.id in self.reuse
            else f"  + recreate {e.name} (was {e.id})"
            for e in self.recreate
        ]
        lines += [f"  - delete {i}" for i in self.created]
        lines += [f"  - detach and delete {e.name} ({e.id}, attached since)" for e in self.detach]
        lines += [f"  - delete {i} ({n}, left by a skipped run)" for i, n in self.leftovers.items()]
        if self.changed_since:
            lines.append(
                f"  note: the agent changed since run {self.run_id} (a later run, a person, or a "
                "push with another --folder / KB_SYNC_FOLDER); kb-sync history shows the runs"
            )
        return "\n".join(lines)

    def desired(self, new_id: Mapping[str, str]) -> list[KbEntry]:
        """The list to PATCH: owned entries as before (recreated ones under their new id),
        unmanaged entries as they are now, those added since at the end."""
        now = {e.id: e for e in self.current}
        out: list[KbEntry] = []
        for e in self.before:
            if self.ownership.owns(e):
                out.append(e.with_id(new_id[e.id]) if e.id in new_id else e)
            elif e.id in now:
                out.append(now[e.id])
        return out + self.extra


def record_ownership(
    rec: Mapping[str, Any], namespace: str, legacy_namespace: str | None = None
) -> Ownership:
    """What the recorded push could have changed: its managed entries (of the namespace it
    ran with, which the record holds: a laptop may have forgotten to set it) and those it
    adopted."""
    adopted = {
        str(r["id"]): str(i.get("file"))
        for i in (rec.get("plan") or {}).get("items", [])
        if i.get("action") == "adopt"
        for r in i.get("replaces", [])
    }
    return Ownership(str(rec.get("namespace") or namespace), adopted, legacy_namespace)


def plan_rollback(
    rec: Mapping[str, Any],
    path: str,
    current: Sequence[KbEntry],
    existing: set[str],
    namespace: str,
    reuse: Mapping[str, str] | None = None,
    legacy_namespace: str | None = None,
) -> RollbackPlan:
    """``existing``: the ids of the record's owned entries that still exist."""
    own = record_ownership(rec, namespace, legacy_namespace)
    before = entries_from(rec["kb_before"])
    saved: Mapping[str, Mapping[str, Any]] = rec.get("saved") or {}
    gone = [e for e in before if own.owns(e) and e.id not in existing]
    missing = [e for e in gone if e.id not in saved]
    if missing:
        names = ", ".join(e.name for e in missing)
        raise SyncError(
            f"{path}: cannot restore {names}: deleted and not saved in the record; nothing "
            "was changed; undo another run with --to ID (kb-sync history), or push the folder"
        )
    before_ids = {e.id for e in before}
    current_ids = {e.id for e in current}
    created = {str(c["id"]): str(c.get("name")) for c in rec.get("created") or []}
    after = rec.get("kb_after")
    return RollbackPlan(
        path=path,
        run_id=str(rec.get("run_id")),
        before=before,
        current=tuple(current),
        ownership=own,
        recreate=gone,
        extra=[e for e in current if e.id not in before_ids and not own.owns(e)],
        removed_since=[e for e in before if not own.owns(e) and e.id not in current_ids],
        created=created,
        saved=saved,
        reuse=dict(reuse or {}),
        detach=[  # reused copies go back in (under before's entries): not detached
            e
            for e in current
            if own.owns(e)
            and e.id not in before_ids | set((reuse or {}).values())
            and e.id not in created
        ],
        changed_since=after is not None
        and [str(e.get("id")) for e in after] != [e.id for e in current],
    )
