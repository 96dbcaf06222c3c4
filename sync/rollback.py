"""`kb-sync rollback`: bring back the agent's knowledge base from before a push.

:func:`~sync.rollback_plan.plan_rollback` is pure (:mod:`sync.rollback_plan`): the run record
and the agent now -> a :class:`~sync.rollback_plan.RollbackPlan`.
It is executed by the apply phases: documents the push deleted are recreated from the content
its record saved (``upload``), indexed (``index``) and put back in their places (one PATCH);
then what the push created is deleted, with the same care as any delete. It has a dry run.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from .apply import Applier, Options
from .client import Client
from .clock import Clock
from .config import Settings
from .content import same_content
from .domain import AgentView, KbEntry, Ownership, entries_from, entries_json
from .errors import AppliedPartially, ExitCode, GuardRefused, NotFound, SyncError
from .guards import refuses_mass_delete
from .history import HistoryWriter
from .lease import writing
from .log import event
from .plan import Item, Ref
from .record import RunRecord, interrupted
from .remote import read_agent, read_documents
from .results import DocResult, Outcome, outcome_lines
from .rollback_plan import RollbackPlan, plan_rollback, record_ownership
from .rollback_source import Source, load_run


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


def _exists(client: Client, doc_id: str) -> bool:
    try:
        client.get_document(doc_id)
        return True
    except NotFound:
        return False


def _earlier_copies(
    client: Client, gone: Iterable[KbEntry], saved: Mapping[str, Mapping[str, Any]]
) -> dict[str, str]:
    """Deleted docs that an earlier rollback of the same record already recreated (same name,
    same size, and the stored content read back: a copy a person edited since is not it):
    reused, not uploaded again."""
    out: dict[str, str] = {}
    for e in gone:
        if e.id not in saved:
            continue
        text = str(saved[e.id]["text"])
        size = len(text.encode("utf-8"))
        for d in client.find_by_name(e.name):
            if (d.get("metadata") or {}).get("size_bytes") != size:
                continue
            try:
                if same_content(text, client.get_content(str(d["id"])), None):
                    out[e.id] = str(d["id"])
                    break
            except NotFound:
                continue
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
    src = load_run(settings, client, record_path, run_id)
    if src.rec is None:
        return _none_changed(out, src, as_json)
    path = src.label
    if dry_run:
        return _dry_run(settings, client, out, src, as_json, allow_mass_delete)
    # read-only first: a refusal, or nothing to do, writes nothing (no lease, no record)
    first = _plan(settings, client, out, src, dry_run=False, as_json=as_json, quiet=True)
    _guard(first, allow_mass_delete)
    if _nothing_to_do(first):
        out.write(first.render_skipped())
        out.write(f"{NOTHING}\n")
        event("rollback.nothing_to_do", record=path)
        return ExitCode.OK
    probe = RunRecord("rollback", settings.agent_id, settings.namespace, settings.base_url)
    probe.directory = settings.record_dir
    probe.check_writable()
    opts = options or Options()
    _, found = read_documents(client, settings)
    layout, leases = writing(client, clock, found, settings.agent_id, opts.index_wait)
    run_id = uuid.uuid4().hex[:12]  # the lease's and the record's
    with leases.held(run_id, "rollback") as lease:
        # --json prints the plan with the result, at the end: one object
        plan = _plan(settings, client, out, src, dry_run=False, as_json=as_json, quiet=as_json)
        _guard(plan, allow_mass_delete)
        record = _new_record(settings, plan, run_id)
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
        done = Done(
            out, as_json, lambda: read_agent(client, settings), lambda: leases.release(lease)
        )
        return _guarded(plan, applier, record, done)


NOTHING = "Nothing to roll back: the agent already holds what that run started from."


def _dry_run(
    settings: Settings, client: Client, out: TextIO, src: Source, as_json: bool, allow: bool
) -> int:
    shown = _plan(settings, client, out, src, dry_run=True, as_json=as_json, quiet=True)
    try:
        _guard(shown, allow)
    except GuardRefused as exc:
        shown.refused = str(exc)
    _print(out, shown, True, as_json)
    _log_plan(shown, True)
    if shown.refused and not as_json:
        out.write(f"note: the rollback itself would be refused: {shown.refused}\n")
    elif _nothing_to_do(shown) and not as_json:  # the real run would write nothing
        out.write(f"{NOTHING} (the real run would write nothing)\n")
    return ExitCode.OK


def _new_record(settings: Settings, plan: RollbackPlan, run_id: str) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        directory=settings.record_dir,
        kind="rollback",
        agent_id=settings.agent_id,
        namespace=plan.ownership.namespace,  # the undone run's: a rollback of it owns the same
        base_url=settings.base_url,
        kb_before=entries_json(plan.current),
        options={"record": plan.path, "undoes": plan.run_id, "summary": plan.summary()},
    )


def _plan(
    settings: Settings,
    client: Client,
    out: TextIO,
    src: Source,
    *,
    dry_run: bool,
    as_json: bool,
    quiet: bool = False,
) -> RollbackPlan:
    """Read the agent and the record's documents now, plan (pure), print (unless quiet)."""
    path, rec = src.label, src.rec
    assert rec is not None
    current = read_agent(client, settings).entries
    own = record_ownership(rec, settings.namespace, settings.legacy_namespace)
    existing = _existing(client, entries_from(rec["kb_before"]), own)
    saved: Mapping[str, Mapping[str, Any]] = rec.get("saved") or {}
    gone = [e for e in entries_from(rec["kb_before"]) if own.owns(e) and e.id not in existing]
    reuse = _earlier_copies(client, gone, saved)
    plan = plan_rollback(
        rec, str(path), current, existing, settings.namespace, reuse, settings.legacy_namespace
    )
    plan.skipped = list(src.skipped)
    # what the run created and a later run deleted is not there to delete: left out
    attached = {e.id for e in current}
    plan.created = {i: n for i, n in plan.created.items() if i in attached or _exists(client, i)}
    plan.leftovers = {
        i: n
        for i, n in src.leftovers
        if i not in attached and i not in plan.created and _exists(client, i)
    }
    if quiet:
        return plan
    _print(out, plan, dry_run, as_json)
    _log_plan(plan, dry_run)
    return plan


def _guarded(plan: RollbackPlan, applier: Applier, record: RunRecord, done: Done) -> int:
    """:func:`_execute`, and after its PATCH every way it can stop says the agent changed."""
    try:
        return _execute(plan, applier, record, done)
    except SyncError as exc:
        raise _failed(record, exc) from None
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM: say what the agent holds now
        raise interrupted(
            record,
            "the agent already points at the restored documents; what the rollback meant "
            "to delete may remain: the next run cleans it up",
        ) from None
    except Exception as exc:  # a bug; after the PATCH the agent is already changed
        if not record.patched:
            raise
        raise _failed(record, SyncError(f"internal error ({type(exc).__name__})")) from exc


def _failed(record: RunRecord, exc: SyncError) -> SyncError:
    """The record closed as failed; after the PATCH the agent is changed: a partial (exit 3)
    that says so, never "not changed" (exit 1)."""
    late: SyncError = exc
    if record.patched:
        late = AppliedPartially(
            f"{exc}; the agent already points at the restored documents; what the rollback "
            "meant to delete may remain: the next run cleans it up"
        )
    record.status, record.exit_code = "failed", int(late.exit_code)
    record.write()
    return late


def _log_plan(plan: RollbackPlan, dry_run: bool) -> None:
    event(
        "rollback.plan",
        record=plan.path,
        restore=len(plan.before),
        recreate=len(plan.recreate) - len(plan.reuse),
        reuse=len(plan.reuse),
        delete=len(plan.created),
        dry_run=dry_run,
    )


def _none_changed(out: TextIO, src: Source, as_json: bool) -> int:
    """Every stored run left the agent as it found it: nothing to undo, nothing written."""
    text = f"Nothing to roll back: none of the {len(src.skipped)} stored runs changed the agent."
    if as_json:
        payload = {"rollback": {"skipped_runs": list(src.skipped)}, "summary": text}
        out.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    else:
        out.write(RollbackPlan.skipped_lines(src.skipped) + text + "\n")
    event("rollback.nothing_to_do", record=src.label, skipped=len(src.skipped))
    return ExitCode.OK


def _guard(plan: RollbackPlan, allow: bool) -> None:
    removing, managed = plan.removing()
    if refuses_mass_delete(removing, managed, allow=allow):
        raise GuardRefused(
            f"the rollback would remove {removing} of the agent's {managed} managed entries "
            f"(undoing run {plan.run_id} restores {managed - removing}); nothing was changed; "
            "check with --dry-run, then pass --allow-mass-delete"
        )


def _nothing_to_do(plan: RollbackPlan) -> bool:
    """The agent already holds what the run started from, and nothing it created is left."""
    fresh = [e for e in plan.recreate if e.id not in plan.reuse]
    desired = [e.id for e in plan.desired(plan.reuse)]  # reused copies in their places
    # plan.created holds only what still exists (_plan): any of it is left to delete
    left = plan.detach or plan.created or plan.leftovers
    return not (fresh or left or desired != [e.id for e in plan.current])


def _recreate(plan: RollbackPlan, applier: Applier, client: Client) -> dict[str, str]:
    """Upload and index the deleted documents again (reusing what an earlier rollback of
    the same record recreated); old id -> new id. Nothing is attached yet."""
    results: list[DocResult] = []
    texts: dict[str, str] = {}
    for e in plan.recreate:  # what exists of that name now is not ours to adopt on a retry
        if e.id not in plan.reuse:
            found = {str(d.get("id")) for d in client.find_by_name(e.name)}
            applier.known_ids.setdefault(e.name, set()).update(found)
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


@dataclass(frozen=True)
class Done:
    """Where a rollback reports, how it re-reads the agent, and its lease's release (called
    once the last write is done, so that the request count it records includes it)."""

    out: TextIO
    as_json: bool
    reread: Callable[[], AgentView]
    release: Callable[[], None]


def _execute(plan: RollbackPlan, applier: Applier, record: RunRecord, done: Done) -> int:
    client, out = applier.client, done.out
    new_id = _recreate(plan, applier, client)
    desired = plan.desired(new_id)
    after = applier.patch_and_read_back(desired, plan.current, done.reread)
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
    refs += [Ref(i, n, "left by a skipped run") for i, n in plan.leftovers.items()]
    record.deletions = applier.delete_superseded([r for r in refs if r.id not in keep_ids])
    done.release()
    partial = any(d["outcome"] in ("kept", "failed") for d in record.deletions)
    code = ExitCode.PARTIAL if partial else ExitCode.OK
    record.status, record.exit_code = ("partial" if partial else "done"), int(code)
    record.requests = client.requests_sent
    record.write()
    event(
        "rollback.done",
        record=record.path,
        count_after=len(after),
        partial=partial,
        requests=record.requests,
    )
    text = "\n".join(
        [
            f"Rolled back: knowledge base {len(plan.current)} -> {len(after)} entries. "
            f"Record: {record.path}",
            *outcome_lines(Outcome(code, [], record.deletions)),
        ]
    )
    if done.as_json:
        result = {
            "status": record.status,
            "exit_code": record.exit_code,
            "text": text,
            "record": str(record.path),
            "deletions": record.deletions,
        }
        payload = {"rollback": plan.steps(), "summary": plan.summary(), "dry_run": False}
        out.write(json.dumps(payload | {"result": result}, ensure_ascii=False, indent=2) + "\n")
    else:
        out.write(text + "\n")
    return code
