"""`kb-sync rollback`: bring back the agent's knowledge base from before a push.

:func:`plan_rollback` is pure: the run record and the agent now -> a :class:`RollbackPlan`.
It is executed by the apply phases: documents the push deleted are recreated from the content
its record saved (``upload``), indexed (``index``) and put back in their places (one PATCH);
then what the push created is deleted, with the same care as any delete. It has a dry run.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from .apply import Applier, Options
from .client import Client
from .clock import Clock
from .config import Settings
from .domain import KbEntry, Ownership, entries_from, entries_json
from .errors import ExitCode, GuardRefused, NotFound, SyncError
from .guards import refuses_mass_delete
from .history import HistoryWriter
from .lease import writing
from .log import event
from .plan import Item, Ref
from .record import RunRecord
from .remote import read_agent, read_documents
from .results import DocResult
from .rollback_source import load_run


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

    def summary(self) -> str:
        fresh = len(self.recreate) - len(self.reuse)
        parts = [f"{fresh} to recreate"] + ([f"{len(self.reuse)} to reuse"] if self.reuse else [])
        more = f", detach and delete {len(self.detach)} attached since" if self.detach else ""
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
        }

    def render(self) -> str:
        lines = [self.summary()]
        lines += [
            f"  ~ reuse {e.name} ({self.reuse[e.id]}, recreated by an earlier rollback)"
            if e.id in self.reuse
            else f"  + recreate {e.name} (was {e.id})"
            for e in self.recreate
        ]
        lines += [f"  - delete {i}" for i in self.created]
        lines += [f"  - detach and delete {e.name} ({e.id}, attached since)" for e in self.detach]
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
    """What the recorded push could have changed: its managed entries and those it adopted."""
    adopted = {
        str(r["id"]): str(i.get("file"))
        for i in (rec.get("plan") or {}).get("items", [])
        if i.get("action") == "adopt"
        for r in i.get("replaces", [])
    }
    return Ownership(namespace, adopted, legacy_namespace)


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


def _existing(client: Client, entries: Iterable[KbEntry], own: Ownership) -> set[str]:
    out: set[str] = set()
    for e in entries:
        if not own.owns(e):
            continue  # unmanaged entries stay as they are now (a person may have moved them)
        try:
            client.get_document(e.id)
            out.add(e.id)
        except NotFound:
            pass
    return out


def _earlier_copies(
    client: Client, gone: Iterable[KbEntry], saved: Mapping[str, Mapping[str, Any]]
) -> dict[str, str]:
    """Deleted docs that an earlier rollback of the same record already recreated (same name,
    same size): reused, not uploaded again."""
    out: dict[str, str] = {}
    for e in gone:
        if e.id not in saved:
            continue
        size = len(str(saved[e.id]["text"]).encode("utf-8"))
        for d in client.find_by_name(e.name):
            if (d.get("metadata") or {}).get("size_bytes") == size:
                out[e.id] = str(d["id"])
                break
    return out


def _print(out: TextIO, plan: RollbackPlan, dry_run: bool, as_json: bool) -> None:
    if as_json:
        payload = {"rollback": plan.steps(), "summary": plan.summary(), "dry_run": dry_run}
        out.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    else:
        out.write(plan.render() + "\n")
        if dry_run:
            out.write("Dry run: nothing was changed.\n")
    out.flush()


def rollback_command(
    settings: Settings,
    client: Client,
    clock: Clock,
    out: TextIO,
    *,
    record_path: str | None = None,
    run_id: str | None = None,
    dry_run: bool = False,
    as_json: bool = False,
    options: Options | None = None,
    allow_mass_delete: bool = False,
) -> int:
    path, rec = load_run(settings, client, record_path, run_id)
    if dry_run:
        _plan(settings, client, out, path, rec, dry_run=True, as_json=as_json)
        return ExitCode.OK
    # read-only first: a refusal, or nothing to do, writes nothing (no lease, no record)
    first = _plan(settings, client, out, path, rec, dry_run=False, as_json=as_json, quiet=True)
    _guard(first, allow_mass_delete)
    if _nothing_to_do(client, first):
        out.write("Nothing to roll back: the agent already holds what that run started from.\n")
        event("rollback.nothing_to_do", record=path)
        return ExitCode.OK
    probe = RunRecord("rollback", settings.agent_id, settings.namespace, settings.base_url)
    probe.directory = settings.record_dir
    probe.check_writable()
    opts = options or Options()
    _, found = read_documents(client, settings)
    layout, leases = writing(client, clock, found, settings.agent_id, opts.index_wait)
    run_id = uuid.uuid4().hex[:12]  # the lease's and the record's
    with leases.held(run_id, "rollback"):
        plan = _plan(settings, client, out, path, rec, dry_run=False, as_json=as_json)
        _guard(plan, allow_mass_delete)
        record = RunRecord(
            run_id=run_id,
            directory=settings.record_dir,
            kind="rollback",
            agent_id=settings.agent_id,
            namespace=settings.namespace,
            base_url=settings.base_url,
            kb_before=entries_json(plan.current),
            options={"record": path, "undoes": plan.run_id, "summary": plan.summary()},
        )
        applier = Applier(client, clock, settings.agent_id, settings.embedding_model, opts, record)
        applier.folder_id = layout.folder_id
        assert layout.meta_id is not None
        applier.history = HistoryWriter(
            client,
            layout.meta_id,
            record,
            "rollback",
            None,  # never pruned here: this machine's KB_SYNC_HISTORY is not the cron's
        )
        return _execute(plan, applier, client, record, out, as_json, settings)


def _plan(
    settings: Settings,
    client: Client,
    out: TextIO,
    path: str,
    rec: dict[str, Any],
    *,
    dry_run: bool,
    as_json: bool,
    quiet: bool = False,
) -> RollbackPlan:
    """Read the agent and the record's documents now, plan (pure), print (unless quiet)."""
    current = read_agent(client, settings).entries
    own = record_ownership(rec, settings.namespace, settings.legacy_namespace)
    existing = _existing(client, entries_from(rec["kb_before"]), own)
    saved: Mapping[str, Mapping[str, Any]] = rec.get("saved") or {}
    gone = [e for e in entries_from(rec["kb_before"]) if own.owns(e) and e.id not in existing]
    reuse = _earlier_copies(client, gone, saved)
    plan = plan_rollback(
        rec, str(path), current, existing, settings.namespace, reuse, settings.legacy_namespace
    )
    if quiet:
        return plan
    _print(out, plan, dry_run, as_json)
    event(
        "rollback.plan",
        record=str(path),
        restore=len(plan.before),
        recreate=len(plan.recreate) - len(plan.reuse),
        reuse=len(plan.reuse),
        delete=len(plan.created),
        dry_run=dry_run,
    )
    return plan


def _guard(plan: RollbackPlan, allow: bool) -> None:
    removing, managed = plan.removing()
    if refuses_mass_delete(removing, managed, allow=allow):
        raise GuardRefused(
            f"the rollback would remove {removing} of the agent's {managed} managed entries "
            f"(undoing run {plan.run_id} restores {managed - removing}); nothing was changed; "
            "check with --dry-run, then pass --allow-mass-delete"
        )


def _nothing_to_do(client: Client, plan: RollbackPlan) -> bool:
    """The agent already holds what the run started from, and nothing it created is left."""
    fresh = [e for e in plan.recreate if e.id not in plan.reuse]
    desired = [e.id for e in plan.desired(plan.reuse)]  # reused copies in their places
    if fresh or plan.detach or desired != [e.id for e in plan.current]:
        return False
    for doc_id in plan.created:
        try:
            client.get_document(doc_id)
            return False
        except NotFound:
            continue
    return True


def _recreate(plan: RollbackPlan, applier: Applier, client: Client) -> dict[str, str]:
    """Upload and index the deleted documents again (reusing what an earlier rollback of
    the same record recreated); old id -> new id. Nothing is attached yet."""
    results: list[DocResult] = []
    texts: dict[str, str] = {}
    for e in plan.recreate:
        text = str(plan.saved[e.id]["text"])
        size = len(text.encode("utf-8"))
        texts[e.name] = text
        item = Item("create", e.name, e.name, size, e.usage_mode, plan.reuse.get(e.id))
        results.append(DocResult(item=item, usage_mode=e.usage_mode))
    applier.upload(results, texts)
    for e, r in zip(plan.recreate, results, strict=True):
        kind = "rollback.recreated" if r.uploaded else "rollback.reused"
        event(kind, name=e.name, old_id=e.id, id=r.doc_id)
    applier.index(results)
    bad = [r for r in results if not r.ready]
    if bad:
        for r in bad:
            if r.doc_id:
                applier.deleter.delete(Ref(r.doc_id, str(r.item.name), "rollback aborted"))
        raise SyncError(
            "rollback: recreated documents did not index ("
            + ", ".join(f"{r.item.name}: {r.status}" for r in bad)
            + "); the agent was not changed"
        )
    return {e.id: str(r.doc_id) for e, r in zip(plan.recreate, results, strict=True)}


def _execute(
    plan: RollbackPlan,
    applier: Applier,
    client: Client,
    record: RunRecord,
    out: TextIO,
    as_json: bool,
    settings: Settings,
) -> int:
    new_id = _recreate(plan, applier, client)
    desired = plan.desired(new_id)
    after = applier.patch_and_read_back(desired, plan.current, lambda: read_agent(client, settings))
    record.kb_after = entries_json(after)
    event(
        "agent.patched",
        agent=applier.agent_id,
        count_before=len(plan.current),
        count_after=len(after),
        reason="rollback",
    )
    keep_ids = {e.id for e in after}
    # their content is saved in this run's record first: a rollback can be rolled back
    refs = [Ref(i, n, f"created by run {plan.run_id}") for i, n in plan.created.items()]
    refs += [Ref(e.id, e.name, f"attached since run {plan.run_id}") for e in plan.detach]
    record.deletions = applier.delete_superseded([r for r in refs if r.id not in keep_ids])
    record.status = "done"
    record.exit_code = 0
    record.write()
    partial = any(d["outcome"] in ("kept", "failed") for d in record.deletions)
    event("rollback.done", record=record.path, count_after=len(after), partial=partial)
    if not as_json:
        out.write(f"Rolled back: knowledge base {len(plan.current)} -> {len(after)} entries.\n")
    return ExitCode.PARTIAL if partial else ExitCode.OK
