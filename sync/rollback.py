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
from pathlib import Path
from typing import Any, TextIO

from . import history
from .apply import Applier, Options
from .client import Client
from .clock import Clock
from .config import Settings
from .domain import KbEntry, Ownership, entries_from, entries_json
from .errors import ConfigError, ExitCode, InputError, NotFound, SyncError
from .history import HistoryWriter, incomplete_line
from .history_command import where
from .lease import writing
from .log import event
from .plan import Item, Ref
from .record import RunRecord, latest, load
from .remote import read_agent, read_documents
from .results import DocResult


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

    def summary(self) -> str:
        fresh = len(self.recreate) - len(self.reuse)
        parts = [f"{fresh} to recreate"] + ([f"{len(self.reuse)} to reuse"] if self.reuse else [])
        return (
            f"Rollback: restore {len(self.before)} entries ({', '.join(parts)}), "
            f"delete {len(self.created)} created by run {self.run_id}"
        )

    def steps(self) -> dict[str, Any]:
        def refs(es: Iterable[KbEntry]) -> list[dict[str, Any]]:
            return [{"id": e.id, "name": e.raw.get("name")} for e in es]

        return {
            "record": self.path,
            "restore": refs(self.before),
            "recreate": refs(self.recreate),
            "keep_unmanaged_added_since": refs(self.extra),
            "unmanaged_removed_since_stay_removed": refs(self.removed_since),
            "delete_created": list(self.created),
            "reuse": dict(self.reuse),
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
            "was changed"
        )
    before_ids = {e.id for e in before}
    current_ids = {e.id for e in current}
    return RollbackPlan(
        path=path,
        run_id=str(rec.get("run_id")),
        before=before,
        current=tuple(current),
        ownership=own,
        recreate=gone,
        extra=[e for e in current if e.id not in before_ids and not own.owns(e)],
        removed_since=[e for e in before if not own.owns(e) and e.id not in current_ids],
        created={str(c["id"]): str(c.get("name")) for c in rec.get("created") or []},
        saved=saved,
        reuse=dict(reuse or {}),
    )


def _load_file(settings: Settings, record_path: str | None) -> tuple[str, dict[str, Any]]:
    path = (
        Path(record_path) if record_path else latest(settings.agent_id, Path(settings.record_dir))
    )
    rec = load(path)
    if rec["agent_id"] != settings.agent_id:
        raise ConfigError(
            f"{path}: is a record for agent {rec['agent_id']}, not ELEVENLABS_AGENT_ID="
            f"{settings.agent_id}; pass the right --record or agent id"
        )
    return str(path), rec


def _load(
    settings: Settings, client: Client, record_path: str | None, run_id: str | None
) -> tuple[str, dict[str, Any]]:
    """The run to undo: ``--record FILE``; else the stored run ``--to ID``, or the newest
    stored run (which must be complete); with no stored run at all, the newest local record."""
    if record_path:
        return _load_file(settings, record_path)
    runs = where(client, settings).runs
    if run_id is not None:
        run = next((r for r in runs if r.run_id == run_id), None)
        if run is None:
            raise InputError(
                f"--to {run_id}: no stored run of that id for agent {settings.agent_id} in "
                f"{settings.folder}/.kb-sync; pass an id kb-sync history lists"
            )
    elif runs:
        run = runs[-1]
    else:
        event("rollback.no_history", folder=settings.folder, note="using the local records")
        return _load_file(settings, None)
    if not run.complete:
        raise InputError(incomplete_line(run))
    rec = history.load(client, run)
    event("rollback.source", run=run.run_id, kind=run.kind, time=run.when, host=rec.get("host"))
    return f"stored run {run.run_id} ({run.kind}, {run.when})", rec


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
) -> int:
    path, rec = _load(settings, client, record_path, run_id)
    if dry_run:
        _plan(settings, client, out, path, rec, dry_run=True, as_json=as_json)
        return ExitCode.OK
    opts = options or Options()
    _, found = read_documents(client, settings)
    layout, leases = writing(client, clock, found, settings.agent_id, opts.index_wait)
    with leases.held(uuid.uuid4().hex[:12], "rollback"):
        plan = _plan(settings, client, out, path, rec, dry_run=False, as_json=as_json)
        record = RunRecord(
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
            settings.history_keep,
            known=tuple(leases.listed),
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
) -> RollbackPlan:
    """Read the agent and the record's documents now, plan (pure), print."""
    current = read_agent(client, settings).entries
    own = record_ownership(rec, settings.namespace, settings.legacy_namespace)
    existing = _existing(client, entries_from(rec["kb_before"]), own)
    saved: Mapping[str, Mapping[str, Any]] = rec.get("saved") or {}
    gone = [e for e in entries_from(rec["kb_before"]) if own.owns(e) and e.id not in existing]
    reuse = _earlier_copies(client, gone, saved)
    plan = plan_rollback(
        rec, str(path), current, existing, settings.namespace, reuse, settings.legacy_namespace
    )
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
    record.deletions = applier.delete_superseded(
        [
            Ref(i, name, f"created by run {plan.run_id}")
            for i, name in plan.created.items()
            if i not in keep_ids
        ]
    )
    record.status = "done"
    record.exit_code = 0
    record.write()
    partial = any(d["outcome"] in ("kept", "failed") for d in record.deletions)
    event("rollback.done", record=record.path, count_after=len(after), partial=partial)
    if not as_json:
        out.write(f"Rolled back: knowledge base {len(plan.current)} -> {len(after)} entries.\n")
    return ExitCode.PARTIAL if partial else ExitCode.OK
