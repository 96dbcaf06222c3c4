"""`kb-sync plan` and `kb-sync push`: read, plan, guard, apply, record."""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn, TextIO

from .apply import Applier, Options
from .client import Client
from .clock import Clock
from .config import Settings
from .domain import Layout, entries_json
from .errors import (
    AppliedPartially,
    ExitCode,
    NotKept,
    SyncError,
)
from .history import HistoryWriter
from .lease import writing
from .local import Folder, LocalDoc, read_folder
from .lock import agent_lock, lock_path
from .log import event
from .plan import Plan, Snapshot
from .planner import make_plan
from .push_checks import check_agent, check_small, mass_delete_guard, quota_preflight
from .record import RunRecord, interrupted, utc_now
from .remote import read_agent, take_snapshot
from .results import Outcome, outcome_lines

__all__ = ["PushArgs", "agent_lock", "lock_path", "plan_command", "push_command"]


@dataclass
class PushArgs:
    dir: str
    dry_run: bool = False
    strict_hash: bool = False
    json: bool = False
    detailed_exitcode: bool = False
    allow_mass_delete: bool = False
    adopt_legacy: bool = False
    options: Options | None = None


def emit(out: TextIO, args: PushArgs, plan: Plan, extra: dict[str, Any] | None = None) -> None:
    if args.json:
        payload = {"plan": plan.to_dict(), **(extra or {})}
        out.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    else:
        out.write(plan.render() + "\n")
        if extra and "result" in extra:
            out.write(str(extra["result"]["text"]) + "\n")
    out.flush()


def run_plan(
    settings: Settings,
    client: Client,
    args: PushArgs,
    out: TextIO,
    local: list[LocalDoc] | None = None,
) -> tuple[Plan, list[LocalDoc], Snapshot]:
    """Read the folder (unless ``local`` was read already: a re-plan) and ElevenLabs; plan."""
    opts = args.options or Options()
    if local is None:
        local = folder = read_folder(args.dir)
        if not local:
            event(
                "folder.empty",
                logging.WARNING,
                dir=str(args.dir),
                note="no *.md files in the folder: the plan removes every managed document",
            )
        folder.log_skipped(args.dir)  # after folder.empty: the first word is that one
        check_small(local, opts.small_docs, Path(args.dir))
    snap = take_snapshot(
        client, settings, local, strict=args.strict_hash, concurrency=opts.concurrency
    )
    check_agent(snap, settings)
    plan = make_plan(
        local,
        snap,
        namespace=settings.namespace,
        strict=args.strict_hash,
        small_docs=opts.small_docs,
        adopt_legacy=args.adopt_legacy,
        legacy_namespace=settings.legacy_namespace,
    )
    plan.unsynced = local.markdown_like if isinstance(local, Folder) else ()  # UPPER.MD
    event("plan", summary=plan.summary(), local_docs=len(local), strict_hash=args.strict_hash)
    return plan, local, snap


def plan_command(settings: Settings, client: Client, args: PushArgs, out: TextIO) -> int:
    plan, _, _ = run_plan(settings, client, args, out)
    emit(out, args, plan)
    if args.detailed_exitcode and plan.has_changes:
        return ExitCode.CHANGES_PENDING
    return ExitCode.OK


def push_command(
    settings: Settings, client: Client, clock: Clock, args: PushArgs, out: TextIO
) -> int:
    if args.dry_run:
        plan, _, _ = run_plan(settings, client, args, out)
        emit(out, args, plan)
        event("run.dry_run", summary=plan.summary(), writes=client.writes_sent)
        return ExitCode.CHANGES_PENDING if args.detailed_exitcode and plan.has_changes else 0
    # the lock is held from the plan on: a push that planned while another was applying
    # would upload what the other has just uploaded
    with agent_lock(settings.agent_id, settings.base_url):
        return _apply_push(settings, client, clock, args, out)


def _new_record(settings: Settings, args: PushArgs, plan: Plan, snap: Snapshot) -> RunRecord:
    opts = args.options or Options()
    return RunRecord(
        directory=settings.record_dir,
        kind="push",
        agent_id=settings.agent_id,
        namespace=settings.namespace,
        base_url=settings.base_url,
        dir=str(args.dir),
        options={
            "strict_hash": args.strict_hash,
            "index_wait": opts.index_wait,
            "small_docs": opts.small_docs,
            "adopt_legacy": args.adopt_legacy,
        },
        plan=plan.to_dict(),
        kb_before=entries_json(snap.kb),
    )


def _apply_push(
    settings: Settings, client: Client, clock: Clock, args: PushArgs, out: TextIO
) -> int:
    plan, local, snap = run_plan(settings, client, args, out)
    if not plan.has_changes:
        return _nothing_to_do(settings, client, args, out, plan, snap)
    shown = [plan]  # the newest plan: printed with the outcome if the run stops
    try:
        # the guards first, read-only: a refusal writes nothing at all
        mass_delete_guard(plan, args.allow_mass_delete)
        quota_preflight(client, plan)
        _new_record(settings, args, plan, snap).check_writable()
        # a write is coming: our folder, the lease (exclusion across machines), a fresh plan
        opts = args.options or Options()
        layout, leases = writing(client, clock, snap.layout, settings.agent_id, opts.index_wait)
        run_id = uuid.uuid4().hex[:12]  # the lease's and the record's: one id for the run
        with leases.held(run_id, "push") as lease:
            plan, local, snap = run_plan(settings, client, args, out, local)
            shown[0] = plan
            layout = replace(layout, stored=tuple(leases.listed))
            held = Held(layout, run_id, lambda: leases.release(lease))
            return _apply_planned(settings, client, clock, args, out, plan, local, snap, held)
    except SyncError as exc:
        _stopped(out, args, shown[0], exc)
        raise


def _stopped(out: TextIO, args: PushArgs, plan: Plan, exc: SyncError) -> None:
    """A run that stops after its plan still prints it, with the outcome (the error line on
    stderr says why): ``--json`` stays one object, as on success."""
    code = int(exc.exit_code)
    status = {ExitCode.REFUSED: "refused", ExitCode.PARTIAL: "partial"}.get(exc.exit_code)
    result = {
        "status": status or "failed",
        "exit_code": code,
        "error": str(exc),
        "text": f"Stopped (exit {code}): {exc}",
    }
    emit(out, args, plan, {"result": result})


def _nothing_to_do(
    settings: Settings, client: Client, args: PushArgs, out: TextIO, plan: Plan, snap: Snapshot
) -> int:
    kb = entries_json(snap.kb)
    event("kb.before", agent=settings.agent_id, count=len(snap.kb), entries=kb)
    emit(out, args, plan, {"result": {"status": "nothing to do", "text": "Nothing to do."}})
    event(
        "run.done",
        status="nothing to do",
        count_before=len(snap.kb),
        count_after=len(snap.kb),
        requests=client.requests_sent,
    )
    return ExitCode.OK


@dataclass(frozen=True)
class Held:
    """What a run holds under its lease: our folders, its id, and the lease's release (the
    run calls it once its last write is done, before it counts and logs its requests)."""

    layout: Layout
    run_id: str
    release: Callable[[], None]


def _apply_planned(
    settings: Settings,
    client: Client,
    clock: Clock,
    args: PushArgs,
    out: TextIO,
    plan: Plan,
    local: list[LocalDoc],
    snap: Snapshot,
    held: Held,
) -> int:
    layout = held.layout
    if not plan.has_changes:  # another run did it while we waited for the lease
        held.release()
        return _nothing_to_do(settings, client, args, out, plan, snap)
    mass_delete_guard(plan, args.allow_mass_delete)
    record = _new_record(settings, args, plan, snap)
    record.run_id = held.run_id
    event("kb.before", agent=settings.agent_id, count=len(snap.kb), entries=record.kb_before)
    record.write()
    opts = args.options or Options()
    applier = Applier(client, clock, settings.agent_id, settings.embedding_model, opts, record)
    applier.folder_id = layout.folder_id
    assert layout.meta_id is not None
    applier.history = HistoryWriter(
        client, layout.meta_id, record, "push", settings.history_keep, known=layout.stored or ()
    )
    for doc_id, doc in snap.docs.items():
        applier.known_ids.setdefault(doc.name, set()).add(doc_id)
    texts = {d.file: d.text for d in local}
    try:
        outcome = applier.run(plan, texts, lambda: read_agent(client, settings))
    except SyncError as exc:
        held.release()
        _failed(client, record, exc)
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM: say what the agent holds now
        record.requests = client.requests_sent
        raise interrupted(
            record,
            "the agent already points at the new, indexed documents; superseded ones may "
            "remain: the next run cleans them up",
        ) from None
    except Exception as exc:  # a bug; after the PATCH the agent is already changed
        if not record.patched:
            raise
        held.release()
        _failed(client, record, SyncError(f"internal error ({type(exc).__name__})"))
    held.release()  # the run's last request: the record and run.done count it
    _finish(client, record, outcome)
    _report(client, args, out, plan, snap, record, outcome, layout)
    return outcome.exit_code


def _failed(client: Client, record: RunRecord, exc: SyncError) -> NoReturn:
    """Record and re-raise a failure; after the PATCH it is a partial apply (exit 3)."""
    if record.patched:  # the failure came after the PATCH: the agent is already updated
        after = (
            "the agent points at the indexed documents the server kept; every run ends so "
            "until the list fits"
            if isinstance(exc, NotKept)
            else "the agent already points at the new, indexed documents; some superseded "
            "ones may remain: the next run cleans them up"
        )
        late = AppliedPartially(f"{exc}; {after}")
        with contextlib.suppress(SyncError):  # the record may be what failed
            _close(client, record, "failed", late.exit_code)
        _log_failure(record, late)
        raise late from None
    _close(client, record, "failed", exc.exit_code)
    _log_failure(record, exc)
    raise exc


def _log_failure(record: RunRecord, exc: SyncError) -> None:
    event(
        "run.failed",
        logging.ERROR,
        error=str(exc),
        record=record.path,
        note="agent updated, cleanup incomplete"
        if record.patched
        else "the agent still points at its previous documents",
    )


def _close(client: Client, record: RunRecord, status: str, code: int) -> Path:
    record.status, record.exit_code = status, int(code)
    record.requests = client.requests_sent
    return record.write()


def _finish(client: Client, record: RunRecord, outcome: Outcome) -> None:
    status = "partial" if outcome.exit_code == ExitCode.PARTIAL else "done"
    record.finished_at = utc_now()
    _close(client, record, status, outcome.exit_code)


def _report(
    client: Client,
    args: PushArgs,
    out: TextIO,
    plan: Plan,
    snap: Snapshot,
    record: RunRecord,
    outcome: Outcome,
    layout: Layout,
) -> None:
    updated = [r.item.file for r in outcome.results if r.attached]
    kept_old = [r.item.file for r in outcome.results if not r.attached]
    after = record.kb_after or []
    deleted = sum(1 for d in outcome.deletions if d["outcome"] in ("deleted", "force-deleted"))
    made = f"Created folder {layout.name} (and {layout.name}/.kb-sync). " if layout.created else ""
    text = made + (
        f"Applied: {len(updated)} attached, {len(kept_old)} kept their old version, "
        f"{deleted} deleted; knowledge base {len(snap.kb)} -> {len(after)} entries. "
        f"Record: {record.path}"
    )
    text = "\n".join([text, *outcome_lines(outcome)])
    result = {
        "status": record.status,
        "exit_code": record.exit_code,
        "text": text,
        "record": str(record.path),
        "folder_created": layout.created,
        "results": record.results,
        "deletions": record.deletions,
    }
    emit(out, args, plan, {"result": result})
    event(
        "run.done",
        status=record.status,
        count_before=len(snap.kb),
        count_after=len(after),
        updated=updated,
        kept_old_version=kept_old,
        record=str(record.path),
        requests=client.requests_sent,
    )
