"""Run records: one JSON file per applied run, holding what a rollback needs.

The cron's disk does not survive, so the agent's knowledge base before the run is also logged
as one JSON line (``kb.before``); the file record is for the operator who keeps ``reports/``.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import __version__
from .errors import InputError

DEFAULT_DIR = "reports/runs"
_LOCAL = frozenset({"path", "directory"})  # where this copy is, not part of the record


def _file_stamp() -> str:
    """Sortable to the microsecond, so records of one second keep their order."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H%M%S.%fZ")


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class RunRecord:
    kind: str  # push | rollback
    agent_id: str
    namespace: str
    base_url: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started_at: str = field(default_factory=utc_now)
    finished_at: str | None = None
    version: str = __version__
    dir: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    plan: dict[str, Any] | None = None
    kb_before: list[dict[str, Any]] = field(default_factory=list)
    kb_after: list[dict[str, Any]] | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    created: list[dict[str, Any]] = field(default_factory=list)  # docs this run uploaded
    deletions: list[dict[str, Any]] = field(default_factory=list)
    # content of every document this run detached, so a rollback can recreate it
    saved: dict[str, dict[str, Any]] = field(default_factory=dict)
    patched: bool = False
    # started -> patching (the intent: the list about to be sent, written before the PATCH)
    # -> done | partial | failed (complete); a record left at "patching" means the run died
    # around its PATCH, and nobody knows from it whether the agent changed
    status: str = "started"
    intent: list[dict[str, Any]] | None = None
    exit_code: int | None = None
    requests: int = 0
    path: str | None = None
    directory: str = DEFAULT_DIR  # where to write: Settings.record_dir (KB_SYNC_RECORD_DIR)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape, O(N) and without copies (``asdict`` deep-copied every list: 1 s at
        2,000 documents); the caller only serialises it."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _LOCAL}

    def check_writable(self) -> None:
        """Before the first write request: the record dir exists (or can be made) and takes a
        file. Leaves nothing behind."""
        probe = RunRecord(self.kind, self.agent_id, self.namespace, self.base_url)
        probe.directory = self.directory
        path = probe.write()
        path.unlink(missing_ok=True)

    def write(self) -> Path:
        directory = Path(self.directory)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(
                f"KB_SYNC_RECORD_DIR={self.directory}: not a folder kb-sync can write "
                f"({exc.strerror or exc}); set it to a writable folder"
            ) from None
        p = (
            Path(self.path)
            if self.path
            else directory / f"{_file_stamp()}-{self.kind}-{self.run_id}.json"
        )
        tmp = p.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2), "utf-8")
            os.replace(tmp, p)
        except OSError as exc:
            raise InputError(
                f"KB_SYNC_RECORD_DIR={self.directory}: run records cannot be written there "
                f"({exc.strerror or exc}); set it to a writable folder"
            ) from None
        self.path = str(p)
        return p


def load(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        data = json.loads(p.read_text("utf-8"))
    except FileNotFoundError:
        raise InputError(
            f"{p}: run record not found; pass --record with an existing file"
        ) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{p}: not a readable run record ({exc}); pass another --record") from None
    if not isinstance(data, dict) or "agent_id" not in data or not well_formed(data):
        raise InputError(f"{p}: not a kb-sync run record; pass a file from reports/runs/")
    return data


def _entries(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(e, dict) and "id" in e for e in value)


def well_formed(data: Any) -> bool:
    """What a rollback reads of a record has the shape it needs (an edited or truncated
    record is a line, not a traceback): entry lists of objects with ids, saved contents."""
    if not isinstance(data, dict) or not _entries(data.get("kb_before")):
        return False
    if any(data.get(k) is not None and not _entries(data[k]) for k in ("kb_after", "created")):
        return False
    saved = data.get("saved") or {}
    return isinstance(saved, dict) and all(
        isinstance(v, dict) and isinstance(v.get("text"), str) for v in saved.values()
    )


def interrupted(record: RunRecord, after_patch: str) -> KeyboardInterrupt:
    """Close ``record`` as interrupted (exit 130) and the interrupt to raise: after the PATCH
    it says what the agent now holds (``after_patch``), which the CLI's line then shows."""
    record.finished_at, record.status, record.exit_code = utc_now(), "interrupted", 130
    record.write()
    return KeyboardInterrupt(f"after the PATCH: {after_patch}" if record.patched else "")
