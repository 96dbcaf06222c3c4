"""Run history kept in ElevenLabs, so a rollback works from any machine (the cron's disk is
wiped after every run).

Every applied run (push or rollback) stores its record as text documents in
``<folder>/.kb-sync`` (never attached to an agent, never RAG-indexed), one or more *parts*:

``run:<agent id>:<UTC time to the microsecond>:<run id>:<kind>:<state>:<i>of<n>``

* ``intent`` is written before the agent's PATCH (the list about to be sent, the KB before);
* ``done`` replaces it (the same documents, PATCHed: name and content) once the agent is
  patched, read back, and the content of every document the run is about to delete is in the
  record: the deletes come only after the record that can undo them is stored.

A run is *complete* when all its parts ``1..n`` are ``done``; anything else (a crash between
the two) is incomplete, and ``kb-sync rollback`` refuses it with a line saying so. A part
holds ``{"kb_sync_run": id, "part": i, "of": n, "data": "<a slice of the record's JSON>"}``,
so a record longer than one document's character limit spans several (each part at most
290,000 characters); ``<``, ``>`` and ``&``
are escaped (the service serves content as HTML). The newest ``KB_SYNC_HISTORY`` runs (default
10) are kept; older ones are deleted after each completed run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .client import Client
from .domain import RemoteDoc
from .errors import ApiError, InputError, NotFound
from .folders import META
from .log import event
from .record import RunRecord, well_formed

PREFIX = "run:"
# the longest a part may be, in characters: under the 300,000-character limit of a document
PART_LIMIT = 290_000
_NAME = re.compile(
    r"^run:(?P<agent>[^:]+):(?P<stamp>\d{8}T\d{6}(?:\d{6})?Z):(?P<run>[A-Za-z0-9]+):(?P<kind>push|rollback|cleanup)"
    r":(?P<state>intent|done):(?P<i>\d+)of(?P<n>\d+)$"
)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def now_stamp() -> str:
    """This machine's UTC time to the microsecond, ``20261201T114700123456Z``: it orders two
    runs the server created in the same second."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def part_name(
    agent_id: str, run_stamp: str, run_id: str, kind: str, state: str, i: int, n: int
) -> str:
    return f"{PREFIX}{agent_id}:{run_stamp}:{run_id}:{kind}:{state}:{i}of{n}"


@dataclass(frozen=True)
class Part:
    doc_id: str
    run_id: str
    stamp: str
    kind: str
    state: str
    index: int
    of: int
    created: int

    @classmethod
    def parse(cls, doc: RemoteDoc, agent_id: str) -> Part | None:
        m = _NAME.match(doc.name)
        if m is None or m["agent"] != agent_id or doc.is_folder:
            return None
        return cls(
            doc.id,
            m["run"],
            m["stamp"],
            m["kind"],
            m["state"],
            int(m["i"]),
            int(m["n"]),
            doc.created or 0,
        )


@dataclass
class StoredRun:
    run_id: str
    stamp: str
    kind: str
    parts: list[Part] = field(default_factory=list)

    @property
    def created(self) -> int:
        return min((p.created for p in self.parts), default=0)

    def done_parts(self) -> list[Part] | None:
        """The parts ``1..n`` of the ``done`` state, in order; None when incomplete."""
        return self.parts_in("done")

    def parts_in(self, state: str) -> list[Part] | None:
        """The parts ``1..n`` of ``state``, in order; None when some are missing."""
        done = [p for p in self.parts if p.state == state]
        if not done:
            return None
        n = done[0].of
        by_index = {p.index: p for p in done if p.of == n}
        if sorted(by_index) != list(range(1, n + 1)):
            return None
        return [by_index[i] for i in range(1, n + 1)]

    @property
    def complete(self) -> bool:
        return self.done_parts() is not None

    @property
    def when(self) -> str:
        s = self.stamp
        return f"{s[0:4]}-{s[4:6]}-{s[6:8]}T{s[9:11]}:{s[11:13]}:{s[13:15]}Z"


def group(docs: Iterable[RemoteDoc], agent_id: str) -> list[StoredRun]:
    """This agent's runs, oldest first (the server's creation time, then the stamp)."""
    runs: dict[str, StoredRun] = {}
    for d in docs:
        p = Part.parse(d, agent_id)
        if p is None:
            continue
        runs.setdefault(p.run_id, StoredRun(p.run_id, p.stamp, p.kind)).parts.append(p)
    return sorted(runs.values(), key=lambda r: (r.created, r.stamp, r.run_id))


def find_meta(client: Client, folder_id: str | None) -> str | None:
    """The ``.kb-sync`` folder's id (read-only), or None."""
    if folder_id is None:
        return None
    for d in client.list_documents(META, parent_folder_id=folder_id, types=("folder",)):
        doc = RemoteDoc.from_json(d)
        if doc.is_folder and doc.name == META:
            return doc.id
    return None


# -- what is stored --------------------------------------------------------------------------
def payload(record: RunRecord, state: str, command: str) -> dict[str, Any]:
    """The record as stored: what ``history`` shows and what a rollback needs."""
    plan = record.plan or {}
    summary = (plan.get("summary") or {}).get("text") or record.options.get("summary", "")
    return {
        "kb_sync_history": 1,
        "run_id": record.run_id,
        "kind": record.kind,
        "state": state,
        "agent_id": record.agent_id,
        "namespace": record.namespace,
        "started_at": record.started_at,
        "host": _UNSAFE.sub("-", socket.gethostname())[:60],
        "command": command,
        "version": record.version,
        "summary": summary,
        "options": record.options,
        # rollback needs only the adopt items of the plan (what the push could change)
        "plan": {
            "summary": plan.get("summary"),
            "items": [i for i in plan.get("items", []) if i.get("action") == "adopt"],
        },
        "kb_before": record.kb_before,
        "intent": record.intent,
        "kb_after": record.kb_after,
        "created": record.created,
        "saved": record.saved,
        "patched": record.patched,
    }


def _escape(text: str) -> str:
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _part(run_id: str, i: int, n: int, data: str) -> str:
    body = {"kb_sync_run": run_id, "part": i, "of": n, "data": data}
    return _escape(json.dumps(body, ensure_ascii=False))


def _slices(whole: str, limit: int) -> list[str]:
    """Cut ``whole`` so that each slice, escaped in its part, fits ``limit`` characters:
    start at two thirds of it and shrink (escaping at most doubles a slice: bounded)."""
    out: list[str] = []
    i = 0
    while i < len(whole):
        size = max(1, limit * 2 // 3)
        while size > 1 and len(_part("x" * 12, 9999, 9999, whole[i : i + size])) > limit:
            size = size * 3 // 4
        out.append(whole[i : i + size])
        i += size
    return out or [""]


def encode(data: Mapping[str, Any], run_id: str, limit: int | None = None) -> list[str]:
    """The record as parts of at most ``limit`` (default :data:`PART_LIMIT`) characters."""
    whole = _escape(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    slices = _slices(whole, limit or PART_LIMIT)
    return [_part(run_id, i, len(slices), s) for i, s in enumerate(slices, 1)]


def decode_part(content: str, run_id: str, index: int) -> str:
    """One part's slice; the service may wrap content in markup: read from ``{`` to ``}``."""
    start, end = content.find("{"), content.rfind("}")
    try:
        part = json.loads(content[start : end + 1]) if start >= 0 else None
    except ValueError:
        part = None
    if not isinstance(part, dict) or part.get("kb_sync_run") != run_id or part.get("part") != index:
        raise InputError(
            f"stored run {run_id}: part {index} is not readable (edited or truncated in "
            "ElevenLabs?); pick another with kb-sync rollback --to ID (kb-sync history lists them)"
        )
    return str(part.get("data", ""))


def load(client: Client, run: StoredRun, state: str = "done") -> dict[str, Any]:
    """The complete run's record (as :func:`payload` made it); ``state="intent"``: what an
    incomplete run stored before its PATCH."""
    parts = run.parts_in(state)
    if parts is None:
        raise InputError(incomplete_line(run))
    try:
        text = "".join(
            decode_part(client.get_content(p.doc_id), run.run_id, p.index) for p in parts
        )
    except NotFound:
        raise InputError(
            f"stored run {run.run_id}: a part was deleted while reading; run again"
        ) from None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not well_formed(data):
        raise InputError(
            f"stored run {run.run_id}: not a readable kb-sync run; pick another with "
            "kb-sync rollback --to ID (kb-sync history lists them)"
        )
    return data


CLEANUP = "cleanup"  # the kind of a stored push that left the agent's list as it found it


def _shape(entries: Sequence[Mapping[str, Any]] | None) -> list[tuple[str, str]]:
    return [(str(e.get("id")), str(e.get("usage_mode"))) for e in entries or []]


def _real(run: StoredRun) -> bool:
    """A stored run that changed the agent: complete, and not a cleanup."""
    return run.complete and run.kind != CLEANUP


def incomplete_line(run: StoredRun) -> str:
    return (
        f"stored run {run.run_id} ({run.kind}, {run.when}) is incomplete: it stopped around "
        "its PATCH, so whether it changed the agent is unknown and it cannot be undone; check "
        "`kb-sync status`, then push the folder again (it converges on the folder's content) "
        "or undo an earlier complete run with kb-sync rollback --to ID (kb-sync history)"
    )


# -- writing ---------------------------------------------------------------------------------
class HistoryWriter:
    """Stores one run's record: the intent, then done; then prunes to the newest ``keep``."""

    def __init__(
        self,
        client: Client,
        meta_id: str,
        record: RunRecord,
        command: str,
        keep: int | None = 10,
        known: Sequence[RemoteDoc] = (),
    ) -> None:
        self.client, self.meta_id, self.record = client, meta_id, record
        self.command, self.keep, self.known = command, keep, known
        self.stamp = now_stamp()
        self.parts: list[str] = []  # my documents, part 1 first

    def intent(self) -> None:
        self._store("intent")
        event("history.intent", run=self.record.run_id, parts=len(self.parts))

    def complete(self) -> None:
        """Store ``done``: as a ``cleanup`` run when it left the agent's list as it found it
        (it only deleted orphans), which never prunes the last run that changed the agent."""
        r = self.record
        changed = _shape(r.kb_after) != _shape(r.kb_before)
        # None: a rollback, run with another machine's settings: it never prunes
        drop = self._to_prune(changed) if self.keep is not None else []
        if not changed:  # the cleanups it prunes saved what they deleted: carried forward
            for run in (x for x in drop if x.kind == CLEANUP and x.complete):
                with contextlib.suppress(InputError):
                    for doc_id, kept in (load(self.client, run).get("saved") or {}).items():
                        r.saved.setdefault(doc_id, kept)
        self._store("done", r.kind if changed else CLEANUP)
        event("history.stored", run=r.run_id, parts=len(self.parts), changed=changed)
        for run in drop:
            for p in run.parts:
                self._delete(p.doc_id)
        if drop:
            event("history.pruned", runs=len(drop), keep=self.keep)

    def _store(self, state: str, kind: str | None = None) -> None:
        r = self.record
        chunks = encode(payload(r, state, self.command), r.run_id)
        ids: list[str] = []
        for i, chunk in enumerate(chunks, 1):
            name = part_name(
                r.agent_id, self.stamp, r.run_id, kind or r.kind, state, i, len(chunks)
            )
            if i <= len(self.parts):
                self.client.update_document(self.parts[i - 1], name=name, content=chunk)
                ids.append(self.parts[i - 1])
            else:
                made = self.client.create_text(name, chunk, parent_folder_id=self.meta_id)
                ids.append(str(made["id"]))
        surplus, self.parts = self.parts[len(chunks) :], ids
        for doc_id in surplus:
            self._delete(doc_id)

    def _to_prune(self, changed: bool) -> list[StoredRun]:
        """What to delete so that the newest ``keep`` runs of this agent stay (this one
        included), judged from ``known``: what ``.kb-sync`` held when the lease was taken (no
        other run stores one while it is held), so no listing of its own. When neither this run
        nor any kept one changed the agent (cleanup runs, failed ones), the newest that did is
        kept instead of the oldest of those: runs that did nothing never prune the run a
        rollback undoes."""
        runs = group(self.known, self.record.agent_id)
        old = [r for r in runs if r.run_id != self.record.run_id]
        cut = max(0, len(old) + 1 - (self.keep or len(old) + 1))
        drop, kept = old[:cut], old[cut:]
        if not changed and kept and not any(map(_real, kept)):
            real = next((x for x in reversed(drop) if _real(x)), None)
            if real is not None:
                drop = [x for x in drop if x is not real] + [kept[0]]
        return drop

    def _delete(self, doc_id: str) -> None:
        try:
            self.client.delete_document(doc_id)
        except NotFound:
            pass
        except ApiError as exc:  # it is pruned by a later run
            event("history.delete_failed", logging.WARNING, id=doc_id, error=str(exc))
