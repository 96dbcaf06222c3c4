"""`kb-sync history [--json]`, and the folder/history lines of `status` and `verify`.

Read-only: the runs stored in ``<folder>/.kb-sync`` (:mod:`sync.history`), newest first, with
time, host, command, summary, id and whether each is complete.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, TextIO

from .client import Client
from .config import Settings
from .domain import RemoteDoc
from .errors import InputError, SyncError
from .history import StoredRun, find_meta, group, load
from .lease import Lease, lease_prefix
from .remote import read_agent, read_documents


@dataclass(frozen=True)
class Where:
    """Where kb-sync's things are in ElevenLabs, as status and verify report them."""

    folder: str
    folder_id: str | None
    meta_id: str | None
    runs: tuple[StoredRun, ...]
    leases: tuple[Lease, ...] = ()  # held now, or left by a crashed run
    docs: tuple[RemoteDoc, ...] = ()  # the managed-named documents of the workspace

    def to_dict(self) -> dict[str, Any]:
        newest = self.runs[-1] if self.runs else None
        return {
            "folder": {"name": self.folder, "id": self.folder_id, "meta_id": self.meta_id},
            "history": {
                "count": len(self.runs),
                "complete": sum(1 for r in self.runs if r.complete),
                "newest": _brief(newest) if newest else None,
            },
            "leases": [
                {"id": x.id, "run": x.run_id, "holder": x.holder, "taken": _utc(x.created)}
                | {"ttl_seconds": x.ttl}
                for x in self.leases
            ],
        }


def where_lines(report: dict[str, Any]) -> list[str]:
    """``status``, ``verify`` and ``history``: the folder, the history, any lease."""
    f, h = report.get("folder") or {}, report.get("history")
    if not f.get("id"):
        return [
            f"Folder: {f.get('name')} ({f.get('error') or 'not created yet: no run has written'})"
        ]
    meta = f"[{f['meta_id']}]" if f.get("meta_id") else "(none yet)"
    lines = [f"Folder: {f['name']} [{f['id']}], metadata in .kb-sync {meta}"]
    n = (h or {}).get("newest")
    if not h or n is None:
        lines.append("History: no stored runs")
    else:
        state = "complete" if n["complete"] else "INCOMPLETE"
        lines.append(
            f"History: {h['count']} stored run{'s' if h['count'] != 1 else ''} "
            f"({h['complete']} complete); newest {n['time']} {n['kind']} {n['id']} ({state})"
        )
    return lines + [
        f"Lease: {x['id']} held by {x['holder']} since {x['taken']} (TTL {x['ttl_seconds']} s): "
        f"a run is writing, or it crashed: then it expires, or kb-sync unlock {x['id']}"
        for x in report.get("leases") or []
    ]


def _utc(unix: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix))


def _brief(run: StoredRun) -> dict[str, Any]:
    return {"id": run.run_id, "time": run.when, "kind": run.kind, "complete": run.complete}


def where(client: Client, settings: Settings) -> Where:
    """Read-only: the folder, ``.kb-sync`` and this agent's stored runs (the caller has read
    the agent: a wrong agent id is its own line)."""
    docs, layout = read_documents(client, settings)
    meta_id = find_meta(client, layout.folder_id)
    raw = list(client.list_documents(parent_folder_id=meta_id)) if meta_id else []
    prefix = lease_prefix(settings.agent_id)
    leases = [x for x in (Lease.parse(d, prefix) for d in raw) if x is not None]
    runs = group((RemoteDoc.from_json(d) for d in raw), settings.agent_id)
    return Where(
        settings.folder,
        layout.folder_id,
        meta_id,
        tuple(runs),
        tuple(leases),
        tuple(docs.values()),
    )


def _row(client: Client, run: StoredRun) -> dict[str, Any]:
    row = _brief(run) | {"host": None, "command": None, "summary": None, "parts": len(run.parts)}
    state = "done" if run.complete else "intent"
    try:
        data = load(client, run, state) if run.parts_in(state) else {}
    except (InputError, SyncError) as exc:
        data = {"summary": f"unreadable: {exc}"}
        row["complete"] = False  # rollback refuses it: never shown as usable
    row["host"], row["command"] = data.get("host"), data.get("command")
    row["summary"] = data.get("summary")
    return row


def history_command(client: Client, settings: Settings, out: TextIO, as_json: bool) -> int:
    read_agent(client, settings)  # a wrong agent id: the 404 line, not "no history"
    w = where(client, settings)
    rows = [_row(client, r) for r in reversed(w.runs)]
    if as_json:
        payload = w.to_dict() | {"runs": rows, "keep": settings.history_keep}
        out.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
        return 0
    for line in where_lines(w.to_dict()):
        out.write(line + "\n")
    for r in rows:
        state = "complete" if r["complete"] else "INCOMPLETE"
        state = "UNREADABLE" if str(r["summary"] or "").startswith("unreadable") else state
        out.write(
            f"  {r['time']}  {r['kind']:8s} {r['id']}  {state:10s}  host {r['host'] or '?'}  "
            f"{r['summary'] or ''}\n"
        )
    if w.runs:
        out.write(
            "Each push keeps the newest KB_SYNC_HISTORY runs (its own setting: here "
            f"{settings.history_keep}). Undo the newest: kb-sync rollback; another: "
            "kb-sync rollback --to ID\n"
        )
    return 0
