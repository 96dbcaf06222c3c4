"""Which run `kb-sync rollback` undoes: a stored run (the newest, or ``--to ID``) read from
``<folder>/.kb-sync``, or a local record file (``--record FILE``). Read-only.

The agent is read first: a wrong ``ELEVENLABS_AGENT_ID`` is its own line (404), not "no
history". With no stored run at all the answer is a line naming the folder looked in (a
``--folder`` typo, or documents pushed by a version before the history), never a silent fall
back to whatever local record the current directory holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import history
from .client import Client
from .config import Settings
from .errors import ConfigError, InputError
from .history import incomplete_line
from .history_command import where
from .log import event
from .record import load
from .remote import read_agent


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


def load_run(
    settings: Settings, client: Client, record_path: str | None, run_id: str | None
) -> tuple[str, dict[str, Any]]:
    """(a label for messages, the record) of the run to undo."""
    if record_path:
        return load_file(settings, record_path)
    read_agent(client, settings)  # a wrong agent id is one line of its own
    place = where(client, settings)
    runs = place.runs
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
        where_ = "does not exist" if place.folder_id is None else "holds no stored run"
        raise InputError(
            f"{settings.folder}/.kb-sync {where_} for agent {settings.agent_id}: nothing to "
            "roll back from ElevenLabs; check the folder (--folder / KB_SYNC_FOLDER, the cron's "
            "value) with kb-sync history, or pass --record FILE with a local run record"
        )
    if not run.complete:
        raise InputError(incomplete_line(run))
    rec = history.load(client, run)
    event("rollback.source", run=run.run_id, kind=run.kind, time=run.when, host=rec.get("host"))
    return f"stored run {run.run_id} ({run.kind}, {run.when})", rec
