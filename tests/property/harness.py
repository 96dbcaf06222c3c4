"""Shared test harness for the safety suites (property, bad input, secrets, concurrency).

- ``kb-sync`` runs in-process through :func:`sync.testing.run_cli`;
- :class:`Watch` checks the safety invariants on the emulator's state after every request
  (installed as a ``Backend.after_request`` hook) and records violations instead of raising
  (the CLI turns stray exceptions into exit 1, which would hide them);
- :class:`Crasher` kills a run at a chosen request, as a killed cron would: the process dies
  before (or just after) the server committed that request, and sends nothing more
  (``run_cli`` reports it as ``Result.killed``).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sync import history
from sync.clock import FakeClock
from sync.domain import RemoteDoc
from sync.emulator import Backend, Call
from sync.emulator.agents import kb_of
from sync.history import StoredRun
from sync.lease import PREFIX as LEASE_PREFIX
from sync.lease import lease_ttl
from sync.naming import parse
from sync.testing import Killed

BASE = "https://api.elevenlabs.io"
MODEL = "multilingual_e5_large_instruct"
NS = "kb-sync"


STATS: dict[str, Any] = {
    "examples": 0,
    "steps": 0,
    "pushes": 0,
    "convergence_pushes": 0,
    "requests_checked": 0,
    "faults": Counter(),
    "crashes": 0,
    "crashes_after_commit": 0,
    "exit_codes": Counter(),
    "reuploads_while_unindexed_copy_existed": 0,
    "interleavings": 0,  # pushes during which another writer acted
    "other_machine_exit_codes": Counter(),
    "person_patches": 0,
    "history": Counter(),  # runs stored by a push: complete / incomplete
}

FILES = ("a.md", "b.md", "Q1 notes.md", "отчёт.md")
SIZES = (12, 150, 498, 499, 500, 501, 502, 700, 1500)
LAT = ("delivery", "refund", "warranty", "pricing", "support", "quarter", "revenue", "policy")
CYR = ("доставка", "возврат", "гарантия", "цена", "поддержка", "квартал", "выручка", "отчёт")
# unmanaged names a person might use: a legacy look-alike of a local file, names sharing our
# prefix without being ours, plain names
UNMANAGED_NAMES = ("Pricing FAQ", "a.md", "b", "kb-sync notes", "kb-sync:draft", "Доставка")


def make_text(nbytes: int, cyrillic: bool, salt: int) -> str:
    words = CYR if cyrillic else LAT
    text = f"# {salt}\n\n"
    i = salt
    while len(text.encode()) < nbytes:
        text += words[i % len(words)] + (" " if i % 9 else "\n")
        i += 1
    cut = text.encode()[:nbytes].decode("utf-8", "ignore")
    return cut + "." * (nbytes - len(cut.encode()))


def same_size_edit(text: str, pos: int) -> str:
    """Swap one letter for another of the same UTF-8 width: same size, new content."""
    letters = [i for i, c in enumerate(text) if c.isalpha()]
    i = letters[pos % len(letters)]
    c = text[i]
    new = ("x" if c != "x" else "y") if c.isascii() else ("ж" if c != "ж" else "щ")
    assert len(new.encode()) == len(c.encode())
    return text[:i] + new + text[i + 1 :]


class Crash(Killed):
    """The process died (SIGKILL): raised from inside a request, never caught by the sync
    (a ``BaseException``); ``run_cli`` turns it into ``Result.killed``."""


def env_for(agent_id: str, key: str, **extra: str) -> dict[str, str]:
    return {
        "ELEVENLABS_API_KEY": key,
        "ELEVENLABS_AGENT_ID": agent_id,
        "KB_SYNC_NAMESPACE": NS,
        **extra,
    }


def writes(backend: Backend) -> list[Call]:
    return [c for c in backend.calls if c.method != "GET"]


def detach(backend: Backend, agent_id: str, doc_id: str) -> None:
    """A person removes an entry in the ElevenLabs UI (the agent's version moves on)."""
    with backend.lock:
        main = backend.agents[agent_id].main
        kb = kb_of(main)
        kb[:] = [loc for loc in kb if loc["id"] != doc_id]
        backend.commit(main)  # a new version of the agent, as Backend.attach makes


def indexed(backend: Backend, doc_id: str, model: str = MODEL) -> bool:
    """Index succeeded, read without deciding anything (no side effect on the emulator)."""
    idx = backend.indexes.get((doc_id, model))
    return idx is not None and idx.terminal == "succeeded"


class Crasher:
    """Wraps ``backend.handle``: at API request number ``at`` (1-based) the process dies,
    before the server sees it (``after_commit=False``) or right after it committed it."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.at: int | None = None
        self.after_commit = False
        self.count = 0
        self.dead = False
        self.fired = False
        self._orig = backend.handle
        backend.handle = self._handle  # type: ignore[method-assign]

    def arm(self, at: int | None, after_commit: bool = False) -> None:
        self.at, self.after_commit, self.count, self.dead, self.fired = (
            at,
            after_commit,
            0,
            False,
            False,
        )

    def _handle(self, method: str, path: str, *args: Any, **kw: Any) -> Any:
        if path.startswith("/_emulator"):
            return self._orig(method, path, *args, **kw)
        if self.dead:
            raise Crash("process already dead")
        self.count += 1
        if self.at is not None and self.count == self.at:
            self.dead = self.fired = True
            if self.after_commit:
                self._orig(method, path, *args, **kw)
            raise Crash(f"killed at request {self.count} ({method} {path})")
        return self._orig(method, path, *args, **kw)


@dataclass
class Watch:
    """The safety invariants, checked against the emulator's state (not the sync's view)."""

    backend: Backend
    agent_id: str
    other_id: str | None = None
    namespace: str = NS
    model: str = MODEL
    unmanaged_docs: dict[str, tuple[str, str]] = field(default_factory=dict)  # id->(name,text)
    unmanaged_entries: list[dict[str, Any]] = field(default_factory=list)  # expected, in order
    other_entries: list[str] = field(default_factory=list)  # ids expected on the other agent
    violations: list[str] = field(default_factory=list)
    attached_before: set[str] = field(default_factory=set)  # the agent's ids, last request
    reuploads_unindexed: int = 0  # a create while an unindexed copy of that version existed
    requests_checked: int = 0

    def install(self) -> None:
        self.backend.after_request.append(self.on_call)

    def on_call(self, backend: Backend, call: Call) -> None:
        self.requests_checked += 1
        forced = call.method == "DELETE" and call.query.get("force") in (["true"], ["True"])
        doc_id = call.path.rsplit("/", 1)[-1]
        if forced and call.status == 200 and doc_id in self.attached_before:
            self.violations.append(
                f"force-deleted {doc_id}, attached to the agent a request before"
            )
        created = call.method == "POST" and call.path.endswith("/knowledge-base/text")
        if created and call.status == 200 and isinstance(call.response_json, dict):
            self._check_create(str(call.response_json["id"]))
        self.check(f"after {call.method} {call.path} -> {call.status}")

    def _check_create(self, new_id: str) -> None:
        b = self.backend
        new = b.docs.get(new_id)
        if new is None or parse(new.name, self.namespace) is None:
            return
        for d in b.docs.values():
            if d.id == new_id or d.name != new.name or d.text != new.text:
                continue
            state = "indexed" if indexed(b, d.id, self.model) else "not indexed yet"
            self.violations.append(
                f"uploaded {new.name} again ({new_id}) while {d.id} with the same content "
                f"already exists ({state})"
            )
            if state != "indexed":
                self.reuploads_unindexed += 1

    def _fail(self, where: str, what: str) -> None:
        msg = f"{what} [{where}]"
        if msg not in self.violations:
            self.violations.append(msg)

    def check(self, where: str = "step") -> None:
        b = self.backend
        with b.lock:
            kb = b.agent_kb(self.agent_id)
            self.attached_before = {str(e["id"]) for e in kb}
            for e in kb:
                doc = b.docs.get(e["id"])
                if doc is None:
                    self._fail(where, f"agent references missing doc {e['id']} ({e.get('name')})")
                elif e.get("usage_mode", "auto") == "auto" and not indexed(b, doc.id, self.model):
                    idx = b.indexes.get((doc.id, self.model))
                    self._fail(
                        where,
                        f"agent references auto doc {doc.name} ({doc.id}) with index "
                        f"{None if idx is None else idx.terminal or 'pending'}",
                    )
            got = [
                {k: e.get(k) for k in ("id", "name", "usage_mode")}
                for e in kb
                if parse(str(e.get("name", "")), self.namespace) is None
            ]
            want = [
                {k: e.get(k) for k in ("id", "name", "usage_mode")} for e in self.unmanaged_entries
            ]
            if got != want:
                self._fail(where, f"unmanaged entries changed: want {want}, got {got}")
            for doc_id, (name, text) in self.unmanaged_docs.items():
                doc = b.docs.get(doc_id)
                if doc is None:
                    self._fail(where, f"unmanaged doc {name} ({doc_id}) was deleted")
                elif (doc.name, doc.text) != (name, text):
                    self._fail(where, f"unmanaged doc {name} ({doc_id}) was modified")
            if self.other_id is not None:
                other = [e["id"] for e in b.agent_kb(self.other_id)]
                if other != self.other_entries:
                    self._fail(
                        where,
                        f"the other agent's knowledge base changed: want {self.other_entries}, "
                        f"got {other} (a force delete of a shared doc?)",
                    )

    def end_state_problems(
        self,
        local: dict[str, str],
        allow_shared_orphans: bool = True,
        unverified: frozenset[str] = frozenset(),
    ) -> list[str]:
        """What is wrong with the workspace compared to a fully synced folder.

        ``unverified``: files whose server copy was tampered with at the same name and size
        (a UI edit): only a ``--strict-hash`` run is expected to see that."""
        from sync.local import RAG_MIN_BYTES
        from sync.naming import fingerprint, managed_name

        b = self.backend
        problems: list[str] = []
        with b.lock:
            kb = b.agent_kb(self.agent_id)
            managed = [e for e in kb if parse(str(e.get("name", "")), self.namespace)]
            by_file: dict[str, list[dict[str, Any]]] = {}
            for e in managed:
                m = parse(str(e["name"]), self.namespace)
                assert m is not None
                by_file.setdefault(m.file, []).append(e)
            for file, text in local.items():
                entries = by_file.pop(file, [])
                if len(entries) != 1:
                    problems.append(f"{file}: {len(entries)} entries on the agent, want 1")
                    continue
                e = entries[0]
                doc = b.docs.get(e["id"])
                want_name = managed_name(self.namespace, file, fingerprint(text))
                small = len(text.encode()) < RAG_MIN_BYTES
                if doc is None:
                    problems.append(f"{file}: entry {e['id']} points at no doc")
                    continue
                if e["name"] != want_name or (doc.text != text and file not in unverified):
                    problems.append(f"{file}: entry {e['name']} holds stale content")
                if e.get("usage_mode", "auto") != ("prompt" if small else "auto"):
                    problems.append(f"{file}: usage_mode {e.get('usage_mode')}")
                if not small and not indexed(b, doc.id, self.model):
                    problems.append(f"{file}: not indexed")
            for file, entries in by_file.items():
                problems.append(f"{file}: removed locally but still attached ({len(entries)})")
            attached = {e["id"] for e in kb}
            # a managed doc another agent uses is not an orphan of ours: it stays (kb-sync never
            # deletes what another agent uses, and does not count it as work left to do)
            shared = {e["id"] for aid in b.agents if aid != self.agent_id for e in b.agent_kb(aid)}
            if allow_shared_orphans:
                shared |= set(self.other_entries)
            for d in b.docs.values():
                if parse(d.name, self.namespace) and d.id not in attached and d.id not in shared:
                    problems.append(f"managed orphan left: {d.name} ({d.id})")
            problems += layout_problems(b, self.agent_id, self.namespace, shared=shared)
        return problems


def layout_problems(
    b: Backend, agent_id: str, namespace: str, keep: int = 10, shared: set[str] | None = None
) -> list[str]:
    """Where things are after a successful run: one root folder named after the namespace
    holding every managed doc, one ``.kb-sync`` in it holding at most ``keep`` stored runs of
    this agent. ``shared``: managed-named docs other agents use, which kb-sync leaves alone."""
    docs = list(b.docs.values())
    roots = [d for d in docs if d.is_folder and d.name == namespace and d.parent_id is None]
    problems = [f"{len(roots)} root folders named {namespace}"] if len(roots) > 1 else []
    root = roots[0].id if roots else None
    metas = [d for d in docs if d.is_folder and d.name == ".kb-sync" and d.parent_id == root]
    meta = metas[0].id if metas else None
    problems += [
        f"managed doc outside the folder: {d.name}"
        for d in docs
        if parse(d.name, namespace)
        and d.id not in (shared or set())
        and (root is None or d.parent_id != root)
    ]
    runs = stored_runs(b, agent_id)
    if len(runs) > keep:
        problems.append(f"{len(runs)} stored runs, keep {keep}")
    problems += [
        f"stored run part outside .kb-sync: {p.doc_id}"
        for r, _ in runs
        for p in r.parts
        if b.docs[p.doc_id].parent_id != meta
    ]
    # (a crashed run's lease stays until a writing run takes it over after its TTL: a run with
    # nothing to do sends no request to look for it)
    return problems


def stored_runs(b: Backend, agent_id: str) -> list[tuple[StoredRun, dict[str, Any] | None]]:
    """This agent's runs in ``.kb-sync``, oldest first, with the record of each complete one."""
    listed = [
        RemoteDoc(d.id, d.name, type=d.type, parent_id=d.parent_id, created=int(d.created_at))
        for d in b.docs.values()
    ]
    out: list[tuple[StoredRun, dict[str, Any] | None]] = []
    for run in history.group(listed, agent_id):
        parts = run.done_parts()
        data = None
        if parts is not None:
            text = "".join(
                history.decode_part(b.docs[p.doc_id].text, run.run_id, p.index) for p in parts
            )
            data = json.loads(text)
        out.append((run, data))
    return out


def expire_crashed_leases(b: Backend, clock: FakeClock) -> None:
    """A crashed run leaves its lease behind; the next cron run comes after it expired (an
    operator could also `kb-sync unlock` it). Time moves on only when there is one."""
    if any(d.is_folder and d.name.startswith(LEASE_PREFIX) for d in b.docs.values()):
        clock.advance(lease_ttl(40.0) + 1)
