"""The sync's safety as a property: a hypothesis state machine over the in-process emulator.

Rules edit the local folder (sizes around the 500-byte floor, Cyrillic, same-size edits), act
as a person in the ElevenLabs UI (unmanaged entries and docs, a second agent sharing one of our
documents, detaching our entries), inject faults, and run ``kb-sync push``, sometimes killing it
at a random request. The invariants of :class:`tests.property.harness.Watch` are checked after
every request of every run (``Backend.after_request``) and after every step; a push that exits 0
must leave the exact end state, and any other outcome must converge on the next clean push.

Profiles: see ``conftest.py`` (``HYPOTHESIS_PROFILE=soak`` for the long run). Counters go to
``reports/property-stats.json``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from sync.clock import FakeClock
from sync.emulator import Backend, FaultRule, rate_limited, server_error
from sync.naming import parse
from sync.testing import Result, run_cli
from tests.canary import CANARY_KEY
from tests.property.harness import (
    FILES,
    NS,
    SIZES,
    STATS,
    UNMANAGED_NAMES,
    Crasher,
    Watch,
    detach,
    env_for,
    expire_crashed_leases,
    indexed,
    make_text,
    same_size_edit,
    stored_runs,
)

FAULTS = ("429", "5xx", "drop-after-commit", "linger", "index-failed", "index-stuck", "quota")
METHODS = ("*", "GET", "POST", "PATCH", "DELETE")
FAULT_PATHS = ("", r"/knowledge-base/text$", r"/agents/", r"/rag-index$", r"/knowledge-base/\w+$")
DROP_TARGETS = (
    ("POST", r"/knowledge-base/text$"),
    ("PATCH", r"/agents/"),
    ("DELETE", r"/knowledge-base/"),
    ("POST", r"/rag-index$"),
)


class SyncMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        STATS["examples"] += 1
        self.tmp = Path(tempfile.mkdtemp(prefix="kbsync-prop-"))
        self.dir = self.tmp / "quarters"
        self.dir.mkdir()
        self.records = str(self.tmp / "runs")  # the env given to the CLI says where
        self._tempdir = tempfile.tempdir  # the lock file: this example's own (a suite running
        tempfile.tempdir = str(self.tmp)  # at the same time on this machine has the same ids)
        self.clock = FakeClock()
        self.quota = 20 * 1024 * 1024
        self.b = Backend(
            api_key=CANARY_KEY, clock=self.clock, quota_bytes=self.quota, index_seconds=3.0, seed=7
        )
        self.agent = self.b.seed_agent(name="Production agent")
        self.other = self.b.seed_agent(name="Staging agent")
        self.watch = Watch(self.b, self.agent, self.other)
        self.watch.install()
        self.crasher = Crasher(self.b)
        self.local: dict[str, str] = {}
        self.salt = 0
        self.faults: list[str] = []
        self.tampered: set[str] = set()

    def teardown(self) -> None:
        STATS["requests_checked"] += self.watch.requests_checked
        STATS["reuploads_while_unindexed_copy_existed"] += self.watch.reuploads_unindexed
        tempfile.tempdir = self._tempdir
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ------------------------------------------------------------------ the local folder
    @initialize(
        docs=st.lists(
            st.tuples(st.sampled_from(FILES), st.sampled_from(SIZES), st.booleans()),
            min_size=1,
            max_size=4,
        ),
        first_push=st.booleans(),
    )
    def start(self, docs: list[tuple[str, int, bool]], first_push: bool) -> None:
        for file, size, cyrillic in docs:
            self.add_or_rewrite_doc(file, size, cyrillic)
        if first_push and self.local:
            res = self._push()
            assert res.code == 0, res.stderr[-3000:]

    def _write(self, file: str, text: str) -> None:
        (self.dir / file).write_bytes(text.encode("utf-8"))
        self.local[file] = text
        self.tampered.discard(file)

    @rule(
        file=st.sampled_from(FILES),
        size=st.sampled_from(SIZES),
        cyrillic=st.booleans(),
    )
    def add_or_rewrite_doc(self, file: str, size: int, cyrillic: bool) -> None:
        self.salt += 1
        self._write(file, make_text(size, cyrillic, self.salt))

    @precondition(lambda self: self.local)
    @rule(data=st.data(), pos=st.integers(0, 10_000))
    def edit_same_size(self, data: st.DataObject, pos: int) -> None:
        file = data.draw(st.sampled_from(sorted(self.local)), label="file")
        old = self.local[file]
        new = same_size_edit(old, pos)
        assert len(new.encode()) == len(old.encode()) and new != old
        self._write(file, new)

    @precondition(lambda self: self.local)
    @rule(data=st.data())
    def remove_doc(self, data: st.DataObject) -> None:
        file = data.draw(st.sampled_from(sorted(self.local)), label="file")
        (self.dir / file).unlink()
        del self.local[file]
        self.tampered.discard(file)

    # ------------------------------------------------------------------ a person in the UI
    @rule(name=st.sampled_from(UNMANAGED_NAMES), attach=st.booleans(), small=st.booleans())
    def person_adds_unmanaged(self, name: str, attach: bool, small: bool) -> None:
        self.salt += 1
        text = make_text(120 if small else 800, False, self.salt)
        with self.b.lock:  # what the person uploaded earlier is indexed, whatever the quota
            quota = self.b.quota_bytes
            self.b.set_quota(10**12)
            doc_id = self.b.seed_document(name, text)
            self.b.set_quota(quota)
        self.watch.unmanaged_docs[doc_id] = (name, text)
        if attach:
            mode = "prompt" if small else "auto"
            self.b.attach(self.agent, doc_id, mode)
            self.watch.unmanaged_entries.append(
                {"id": doc_id, "name": name, "usage_mode": mode, "type": "text"}
            )

    @precondition(lambda self: self.watch.unmanaged_entries)
    @rule(data=st.data())
    def person_removes_unmanaged(self, data: st.DataObject) -> None:
        entry = data.draw(st.sampled_from(self.watch.unmanaged_entries), label="entry")
        detach(self.b, self.agent, entry["id"])
        self.watch.unmanaged_entries.remove(entry)

    def _managed_entries(self) -> list[dict[str, Any]]:
        return [e for e in self.b.agent_kb(self.agent) if parse(str(e["name"]), NS)]

    @precondition(lambda self: self._managed_entries())
    @rule(data=st.data())
    def person_detaches_managed(self, data: st.DataObject) -> None:
        entry = data.draw(st.sampled_from(self._managed_entries()), label="entry")
        detach(self.b, self.agent, entry["id"])

    @precondition(
        lambda self: any(e["id"] not in self.watch.other_entries for e in self._managed_entries())
    )
    @rule(data=st.data())
    def other_agent_shares_managed_doc(self, data: st.DataObject) -> None:
        free = [e for e in self._managed_entries() if e["id"] not in self.watch.other_entries]
        entry = data.draw(st.sampled_from(free), label="entry")
        self.b.attach(self.other, entry["id"], entry.get("usage_mode", "auto"))
        self.watch.other_entries.append(entry["id"])

    @precondition(lambda self: self.watch.other_entries)
    @rule(data=st.data())
    def other_agent_releases_doc(self, data: st.DataObject) -> None:
        doc_id = data.draw(st.sampled_from(self.watch.other_entries), label="doc")
        detach(self.b, self.other, doc_id)
        self.watch.other_entries.remove(doc_id)

    # ------------------------------------------------------------------ faults
    def _fault(self, kind: str) -> None:
        self.faults.append(kind)
        STATS["faults"][kind] += 1
        note(f"fault: {kind}")

    @rule(kind=st.sampled_from(FAULTS), data=st.data())
    def inject_fault(self, kind: str, data: st.DataObject) -> None:
        draw = data.draw
        b = self.b
        if kind == "429":
            retry_after = draw(st.sampled_from([None, 0, 1, 5]), label="retry_after")
            method = draw(st.sampled_from(METHODS), label="method")
            b.add_fault(rate_limited(retry_after, method=method, times=draw(st.integers(1, 3))))
            kind += "" if retry_after is None else " with Retry-After"
        elif kind == "5xx":
            status = draw(st.sampled_from([500, 502, 503]), label="status")
            method = draw(st.sampled_from(METHODS), label="method")
            path = draw(st.sampled_from(FAULT_PATHS), label="path")
            b.add_fault(
                server_error(status, method=method, path=path, times=draw(st.integers(1, 3)))
            )
            kind = str(status)
        elif kind == "drop-after-commit":
            method, path = draw(st.sampled_from(DROP_TARGETS), label="target")
            times = draw(st.integers(1, 2), label="times")
            b.add_fault(FaultRule(method=method, path=path, times=times, drop_after_commit=True))
            kind += f" {method} {path}"
        elif kind == "linger":
            b.linger(draw(st.integers(1, 7), label="times"))
        elif kind in ("index-failed", "index-stuck"):
            computes = draw(st.sampled_from([1, 2, 3, None]), label="times")
            b.set_index_behaviour(f"{NS}:", kind.split("-")[1], computes)
        elif kind == "quota":
            b.set_quota(b.used_bytes() + draw(st.sampled_from([0, 300, 600, 1200, 2500])))
        self._fault(kind)

    # ------------------------------------------------------------------ runs
    def _push(self, *, strict: bool = False, concurrency: int = 1) -> Result:
        argv = ["push", "--dir", str(self.dir), "--index-wait", "40"]
        argv += ["--concurrency", str(concurrency), "--allow-mass-delete"]
        if strict:
            argv.append("--strict-hash")
        env = env_for(self.agent, CANARY_KEY, KB_SYNC_RECORD_DIR=self.records)
        res = run_cli(argv, env, backend=self.b, clock=self.clock)
        STATS["pushes"] += 1
        STATS["exit_codes"]["crash" if res.killed else str(res.code)] += 1
        note(f"push{' --strict-hash' if strict else ''}: exit {res.code}, crashed={res.killed}")
        if res.code == 0 and strict:
            self.tampered.clear()
        return res

    def _calm(self) -> None:
        """The service recovers: no more faults, quota back, stuck indexes finish."""
        self.b.clear_faults()
        with self.b.lock:
            self.b.behaviours.clear()
            self.b.linger(0)
            self.b.set_quota(self.quota)
            for idx in self.b.indexes.values():
                if idx.fate == "stuck" and idx.terminal is None:
                    idx.fate = None
        self.crasher.arm(None)
        self.faults.clear()
        expire_crashed_leases(self.b, self.clock)

    def _assert_clean(self, res: Result, what: str) -> None:
        assert "Traceback" not in res.stderr, f"{what}: internal error\n{res.stderr[-3000:]}"
        assert CANARY_KEY not in res.stderr + res.stdout

    def _end_state(self, allow_shared_orphans: bool) -> list[str]:
        return self.watch.end_state_problems(
            self.local, allow_shared_orphans, unverified=frozenset(self.tampered)
        )

    def _converge(self) -> None:
        self._calm()
        STATS["convergence_pushes"] += 1
        res = self._push(strict=bool(self.tampered))
        self._assert_clean(res, "convergence push")
        self._check_no_violations()
        on_agent = {e["id"] for e in self.b.agent_kb(self.agent)}
        shared_orphans = [i for i in self.watch.other_entries if i not in on_agent]
        if res.code == 3 and shared_orphans:
            problems = self._end_state(allow_shared_orphans=True)
        else:
            assert res.code == 0, (
                f"clean push after a failure: exit {res.code}\n{res.stderr[-3000:]}"
            )
            problems = self._end_state(allow_shared_orphans=False)
        assert not problems, f"no convergence: {problems}"

    @rule(
        crash=st.one_of(st.none(), st.integers(1, 12), st.integers(13, 60)),
        after_commit=st.booleans(),
        strict=st.booleans(),
        faults=st.lists(st.sampled_from(FAULTS), max_size=2),
        concurrency=st.sampled_from([1, 1, 4]),
        recover=st.booleans(),
        data=st.data(),
    )
    def push(
        self,
        crash: int | None,
        after_commit: bool,
        strict: bool,
        faults: list[str],
        concurrency: int,
        recover: bool,
        data: st.DataObject,
    ) -> None:
        for kind in faults:
            self.inject_fault(kind, data)
        known = {r.run_id for r, _ in stored_runs(self.b, self.agent)}
        self.crasher.arm(crash, after_commit)
        res = self._push(strict=strict, concurrency=concurrency)
        if self.crasher.fired:
            STATS["crashes"] += 1
            STATS["crashes_after_commit"] += int(after_commit)
        self.crasher.arm(None)
        self._assert_clean(res, "push")
        self._check_no_violations()
        self._check_history(known, res)
        assert res.killed or res.code in (0, 1, 3, 4), f"exit {res.code}\n{res.stderr[-3000:]}"
        if res.code == 0:
            problems = self._end_state(allow_shared_orphans=False)
            assert not problems, f"push said done (exit 0) but: {problems}"
        if recover and (res.code != 0 or self.faults):
            self._converge()

    @rule(strict=st.booleans())
    def push_clean(self, strict: bool) -> None:
        """The service has recovered; whatever earlier runs left, this run converges."""
        if self.faults or self.crasher.dead:
            self._converge()
            return
        res = self._push(strict=strict)
        self._assert_clean(res, "push")
        self._check_no_violations()
        if res.code != 0:
            self._converge()
        else:
            assert not self._end_state(allow_shared_orphans=False)

    # ------------------------------------------------------------------ other writers
    @precondition(lambda self: self.local)
    @rule(at=st.integers(1, 30), person=st.booleans(), data=st.data())
    def another_writer_during_a_push(self, at: int, person: bool, data: st.DataObject) -> None:
        """At request ``at`` of this push, another writer acts: a kb-sync run from another
        machine (its own temp dir, a folder with one file at another version) or a person
        PATCHing the agent (putting a managed entry back to an older document). The lease
        and the stale-plan check must keep every invariant; a push that exits 0 leaves the
        agent on this folder."""
        file = data.draw(st.sampled_from(sorted(self.local)), label="file")
        other_dir = self.tmp / f"other-{self.salt}"
        self.salt += 1
        other_dir.mkdir()
        for f, t in self.local.items():
            (other_dir / f).write_text(t + ("\nother machine\n" if f == file else ""), "utf-8")
        STATS["interleavings"] += 1
        seen = [0]
        patched = [False]  # this push's agent PATCH went out before the other writer acted
        inner = self.b.handle  # the other writer acts outside the emulator's lock

        def with_other_writer(method: str, path: str, *args: Any, **kw: Any) -> Any:
            if not path.startswith("/_emulator"):
                seen[0] += 1
                if seen[0] == at:
                    self._other_writer(person, other_dir)
                elif seen[0] < at and method == "PATCH" and path.startswith("/v1/convai/agents/"):
                    patched[0] = True
            return inner(method, path, *args, **kw)

        self.b.handle = with_other_writer  # type: ignore[method-assign]
        try:
            res = self._push()
        finally:
            self.b.handle = inner  # type: ignore[method-assign]
        self._assert_clean(res, "push with another writer")
        self._check_no_violations()
        # "nothing to do" takes no lease: it is true as of its read, and another writer may
        # write right after that read (linearised before it); the next push converges
        read_only = "Nothing to do." in res.stdout and seen[0] >= at > 1
        # a person's edit after this push's PATCH (and read-back) comes after it: it stands
        # until the next push, which converges
        after_it = person and patched[0] and seen[0] >= at
        if res.code == 0 and not read_only and not after_it:
            assert not self._end_state(allow_shared_orphans=False)
        else:
            self._converge()

    def _other_writer(self, person: bool, other_dir: Path) -> None:
        if person:
            self._person_puts_back_an_old_version(self.b)
            return
        old_tmp = tempfile.tempdir
        tempfile.tempdir = str(other_dir.parent / f"{other_dir.name}-tmp")  # another machine
        Path(tempfile.tempdir).mkdir(exist_ok=True)
        try:
            argv = ["push", "--dir", str(other_dir), "--index-wait", "40", "--allow-mass-delete"]
            env = env_for(self.agent, CANARY_KEY, KB_SYNC_RECORD_DIR=self.records + "-o")
            res = run_cli(argv, env, clock=self.clock)
        finally:
            tempfile.tempdir = old_tmp
        STATS["other_machine_exit_codes"]["crash" if res.killed else str(res.code)] += 1

    def _person_puts_back_an_old_version(self, backend: Backend) -> None:
        """A person points the agent's entry for a file at an older managed document."""
        kb = backend.agent_kb(self.agent)
        older = [
            d
            for d in backend.docs.values()
            if parse(d.name, NS) and d.id not in {e["id"] for e in kb} and not d.is_folder
        ]
        if not older or not indexed(backend, older[0].id):
            return
        STATS["person_patches"] += 1
        backend.attach(self.agent, older[0].id)

    # ------------------------------------------------------------------ legacy state
    @precondition(lambda self: self.local)
    @rule(data=st.data(), tamper=st.booleans())
    def old_duplicate_or_ui_edit(self, data: st.DataObject, tamper: bool) -> None:
        """A managed-named copy of a local file's current version, attached to the agent: a
        duplicate left by an older run, or (``tamper``) a same-size edit made in the UI."""
        from sync.naming import fingerprint, managed_name

        file = data.draw(st.sampled_from(sorted(self.local)), label="file")
        text = self.local[file]
        if tamper:
            text = same_size_edit(text, 3)
            self.tampered.add(file)
        name = managed_name(NS, file, fingerprint(self.local[file]))
        small = len(text.encode()) < 500
        with self.b.lock:
            quota = self.b.quota_bytes
            self.b.set_quota(10**12)
            doc_id = self.b.seed_document(name, text)
            self.b.set_quota(quota)
            self.b.attach(self.agent, doc_id, "prompt" if small else "auto")

    # ------------------------------------------------------------------ invariants
    def _check_history(self, known: set[str], res: Result) -> None:
        """A push stores at most one run; a run stored complete tells the truth (the agent
        holds its kb_after: nobody else wrote during this push), so a crash or failure before
        that point leaves none or an incomplete one, which rollback refuses."""
        new = [(r, d) for r, d in stored_runs(self.b, self.agent) if r.run_id not in known]
        assert len(new) <= 1, f"one push stored {len(new)} runs"
        kb = [e["id"] for e in self.b.agent_kb(self.agent)]
        for run, data in new:
            STATS["history"]["complete" if data else "incomplete"] += 1
            if data is not None:
                after = [e["id"] for e in data["kb_after"] or []]
                assert after == kb, f"stored run {run.run_id} says {after}, agent holds {kb}"
            elif not res.killed:
                assert res.code != 0, "exit 0 but its stored run is incomplete"

    # ------------------------------------------------------------------ invariants
    def _check_no_violations(self) -> None:
        assert not self.watch.violations, "\n".join(self.watch.violations[:10])

    @invariant()
    def safety(self) -> None:
        STATS["steps"] += 1
        self.watch.check("between steps")
        self._check_no_violations()


SyncMachine.TestCase.settings = settings(
    settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
)
TestSyncMachine = SyncMachine.TestCase
