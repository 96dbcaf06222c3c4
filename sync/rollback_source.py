"""Which run `kb-sync rollback` undoes: a stored run (the newest, or ``--to ID``) read from
``<folder>/.kb-sync``, or a local record file (``--record FILE``). Read-only.

The agent is read first: a wrong ``ELEVENLABS_AGENT_ID`` is its own line (404), not "no
history". With no stored run at all the answer is a line naming the folder looked in (a
``--folder`` typo, or documents pushed by a version before the history), never a silent fall
back to whatever local record the current directory holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import history
from .client import Client
from .config import Settings
from .domain import KbEntry, Ownership, entries_from
from .errors import ConfigError, InputError
from .history import incomplete_line
from .history_command import where
from .log import event
from .record import load
from .remote import read_agent
from .rollback_plan import record_ownership


def load_file(settings: Settings, record_path: str) -> tuple[str, dict[str, Any]]:
    path = Path(record_path)
    rec = load(path)
    if rec["agent_id"] != settings.agent_id:
        raise ConfigError(
            f"{path}: is a record for agent {rec['agent_id']}, not ELEVENLABS_AGENT_ID="
            f"{settings.agent_id}; pass the right --record or agent id"
        )
    if rec.get("status") == "started":
        raise InputError(
            f"{path}: this run stopped before its PATCH, so it never changed the agent; there "
            "is nothing of it to undo: pass another --record (kb-sync history lists stored runs)"
        )
    return str(path), rec


@dataclass(frozen=True)
class Source:
    """The run to undo: a label for messages and its record (None: nothing to undo), and the
    newer stored runs skipped because they did not change the agent."""

    label: str
    rec: dict[str, Any] | None
    skipped: tuple[dict[str, str], ...] = ()
    # what skipped incomplete runs uploaded (id, name): attached nowhere, deleted too
    leftovers: tuple[tuple[str, str], ...] = ()


def _label(run: history.StoredRun, rec: dict[str, Any]) -> str:
    event("rollback.source", run=run.run_id, kind=run.kind, time=run.when, host=rec.get("host"))
    return f"stored run {run.run_id} ({run.kind}, {run.when})"


def load_run(
    settings: Settings, client: Client, record_path: str | None, run_id: str | None
) -> Source:
    """The run to undo: ``--record``, ``--to``, or the newest stored run that changed the agent."""
    if record_path:
        return Source(*load_file(settings, record_path))
    agent = read_agent(client, settings)  # a wrong agent id is one line of its own
    place = where(client, settings)
    runs = place.runs
    if run_id is None and runs:
        return newest_that_changed(client, settings, runs, agent.entries)
    if run_id is None:
        where_ = "does not exist" if place.folder_id is None else "holds no stored run"
        raise InputError(
            f"{settings.folder}/.kb-sync {where_} for agent {settings.agent_id}: nothing to "
            "roll back from ElevenLabs; check the folder (--folder / KB_SYNC_FOLDER, the cron's "
            "value) with kb-sync history, or pass --record FILE with a local run record"
        )
    run = next((r for r in runs if r.run_id == run_id), None)
    if run is None:
        raise InputError(
            f"--to {run_id}: no stored run of that id for agent {settings.agent_id} in "
            f"{settings.folder}/.kb-sync; pass an id kb-sync history lists"
        )
    if not run.complete:
        raise InputError(incomplete_line(run))
    rec = history.load(client, run)
    # what the runs after it deleted (their content saved in their records) may be what
    # undoing it must bring back
    # and what they adopted (an old script's upload they replaced) is the undo's to restore
    later = [r for r in runs[runs.index(run) + 1 :] if r.complete]
    saved: dict[str, Any] = {}
    adopts: list[Any] = []
    for r in reversed(later):
        newer = history.load(client, r)
        saved = {**(newer.get("saved") or {}), **saved}
        adopts += (newer.get("plan") or {}).get("items") or []
    plan = dict(rec.get("plan") or {})
    plan["items"] = [*(plan.get("items") or []), *adopts]
    rec = {**rec, "saved": {**saved, **(rec.get("saved") or {})}, "plan": plan}
    return Source(_label(run, rec), rec)


def _owned(entries: Iterable[KbEntry], own: Ownership) -> list[tuple[str, str]]:
    return [(e.id, e.usage_mode) for e in entries if own.owns(e)]


def newest_that_changed(
    client: Client, settings: Settings, runs: Sequence[history.StoredRun], now: Sequence[KbEntry]
) -> Source:
    """Newest first (at most the stored runs, ``KB_SYNC_HISTORY`` <= 1000): skip a run that
    provably did not change the agent: complete and its ``kb_after`` is its ``kb_before``, or
    incomplete and the agent's managed entries are now exactly what its intent found (its
    PATCH did not land; a run deletes nothing before it is stored complete; unmanaged entries
    a person changed since say nothing of it). An incomplete run the agent does not match is
    refused: it may have changed the agent. What the skipped runs saved (the content of what
    they deleted: orphans) is offered to the run undone, for what it must recreate."""
    skipped: list[dict[str, str]] = []
    saved: dict[str, Any] = {}
    left: list[tuple[str, str]] = []
    for run in reversed(runs):
        rec = history.load(client, run, "done" if run.complete else "intent")
        own = record_ownership(rec, settings.namespace, settings.legacy_namespace)
        before = _owned(entries_from(rec["kb_before"]), own)  # a person's own entries: no news
        after = _owned(entries_from(rec.get("kb_after") or []), own)
        if run.complete and after != before:
            rec = {**rec, "saved": {**saved, **(rec.get("saved") or {})}}
            return Source(_label(run, rec), rec, tuple(skipped), tuple(left))
        if not run.complete and before != _owned(now, own):
            raise InputError(incomplete_line(run))
        why = (
            "it left the agent as it found it"
            if run.complete
            else "incomplete, but the agent is as it found it (its PATCH did not land)"
        )
        saved = {**(rec.get("saved") or {}), **saved}
        kept = {str(e.get("id")) for e in rec.get("kb_after") or []} if run.complete else set()
        left += [(str(c["id"]), str(c.get("name"))) for c in rec.get("created") or []]
        left = [(i, n) for i, n in left if i not in kept]  # its uploads attached nowhere
        skipped.append({"id": run.run_id, "kind": run.kind, "time": run.when, "why": why})
        event("rollback.skipped", run=run.run_id, kind=run.kind, why=why)
    return Source("no stored run", None, tuple(skipped), tuple(left))
