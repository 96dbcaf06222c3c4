"""The folder: the documents already there, what changes, atomic writes, the delete guard.

Unchanged documents are never rewritten (their bytes and mtime stay); a changed one is written
to a temp file in the folder, then ``os.replace``-d over the old one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import GuardRefused, InputError
from ..guards import refuses_mass_delete
from ..log import event
from .records import Record
from .render import Doc


@dataclass
class Plan:
    docs: list[Doc]
    small: list[tuple[Record, int]]  # records whose own document is under the RAG floor
    write: list[tuple[Doc, str]] = field(default_factory=list)  # (doc, "new"|"changed")
    unchanged: list[Doc] = field(default_factory=list)
    remove: list[Path] = field(default_factory=list)


def existing_docs(out: Path) -> list[Path]:
    """The ``*.md`` files directly in ``out`` (generate owns them), sorted."""
    if not out.exists():
        return []
    if not out.is_dir():
        raise InputError(f"--out {out} is not a folder; pass a folder for the documents")
    return sorted(p for p in out.glob("*.md") if not p.name.startswith(".") and p.is_file())


def plan_changes(out: Path, docs: list[Doc], small: list[tuple[Record, int]]) -> Plan:
    """Compare each document with its file: new, changed or unchanged; and what goes."""
    plan = Plan(docs=docs, small=small)
    wanted = {d.filename for d in docs}
    for d in docs:
        path = out / d.filename
        try:
            current: bytes | None = path.read_bytes()
        except FileNotFoundError:
            current = None
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}; check its permissions") from exc
        if current == d.data:
            plan.unchanged.append(d)
        else:
            plan.write.append((d, "new" if current is None else "changed"))
    plan.remove = [p for p in existing_docs(out) if p.name not in wanted]
    return plan


def guard_removals(plan: Plan, existing: int, out: Path, *, allow: bool) -> None:
    """The mass-delete guard on the folder (the push has the same one on the agent)."""
    if refuses_mass_delete(len(plan.remove), existing, allow=allow):
        raise GuardRefused(
            f"refusing to remove {len(plan.remove)} of the {existing} documents in {out} "
            "(more than half); check the source, or pass --allow-mass-delete if it is meant"
        )


def apply_plan(out: Path, plan: Plan) -> None:
    """Write the new and changed documents, then remove the ones whose record is gone."""
    out.mkdir(parents=True, exist_ok=True)
    for doc, why in plan.write:
        write_atomic(out / doc.filename, doc.data)
        # each file is said once, on the command's output; the log line is for -v
        event("generate.written", logging.DEBUG, file=doc.filename, bytes=len(doc.data), why=why)
    for path in plan.remove:
        path.unlink(missing_ok=True)
        event("generate.removed", logging.DEBUG, file=path.name)


def write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
