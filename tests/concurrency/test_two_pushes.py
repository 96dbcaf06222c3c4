"""Two pushes at once, and a person editing the agent mid-run (see docs/safety.md).

Mechanisms under test: the local per-agent flock (``sync.push.agent_lock``) and the stale-plan
check (re-read the agent just before the PATCH; managed entries changed -> exit 4, nothing
attached or deleted).
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sync.clock import TIME_SCALE_VAR, FakeClock, ScaledClock
from sync.emulator import Backend, Call, emulate, serve
from sync.naming import parse
from sync.push import agent_lock
from sync.testing import Result, run_cli
from tests.canary import CANARY_KEY
from tests.property.harness import Watch, detach, env_for

pytestmark = pytest.mark.safety
ROOT = Path(__file__).resolve().parents[2]
TEXT = "Opening hours are nine to five on weekdays, closed on public holidays.\n\n" * 9


class World:
    def __init__(self, tmp: Path, files: dict[str, str]) -> None:
        self.clock = FakeClock()
        self.b = Backend(api_key=CANARY_KEY, clock=self.clock, index_seconds=3.0, seed=21)
        self.agent = self.b.seed_agent()
        self.faq = self.b.seed_document("Pricing FAQ", TEXT + "faq\n", attach_to=[self.agent])
        self.dir = tmp / "q"
        self.dir.mkdir()
        for f, t in files.items():
            (self.dir / f).write_text(t, "utf-8")
        self.local = files
        self.env = env_for(self.agent, CANARY_KEY, KB_SYNC_RECORD_DIR=str(tmp / "runs"))
        self.watch = Watch(
            self.b,
            self.agent,
            unmanaged_docs={self.faq: ("Pricing FAQ", TEXT + "faq\n")},
            unmanaged_entries=[e for e in self.b.agent_kb(self.agent)],
        )
        self.watch.install()

    def push(self, *extra: str) -> Result:
        """One push; the test holds ``emulate`` (two pushes may share it, in two threads)."""
        return run_cli(
            ["push", "--dir", str(self.dir), "--allow-mass-delete", *extra],
            self.env,
            clock=self.clock,
        )

    def managed_entries(self) -> list[dict[str, Any]]:
        return [e for e in self.b.agent_kb(self.agent) if parse(e["name"], "kb-sync")]

    def creates(self) -> Counter[str]:
        return Counter(
            c.request_json["name"]
            for c in self.b.calls
            if c.method == "POST" and c.path.endswith("/knowledge-base/text") and c.status == 200
        )


def _hold_lock(agent_id: str) -> Any:
    """The lock another run would hold (its signature grew a base_url: locks are per agent
    and API base)."""
    if "base_url" in inspect.signature(agent_lock).parameters:
        return agent_lock(agent_id, "https://api.elevenlabs.io")
    return agent_lock(agent_id)  # type: ignore[call-arg]


def test_lock_held_refuses_before_any_write(tmp_path: Path) -> None:
    w = World(tmp_path, {"a.md": TEXT})
    with emulate(w.b), _hold_lock(w.agent):
        res = w.push()
    assert res.code == 4
    assert "holds the lock" in res.stderr and w.agent in res.stderr
    assert [c for c in w.b.calls if c.method != "GET"] == []
    with emulate(w.b):
        assert w.push().code == 0
    assert not w.watch.end_state_problems(w.local, allow_shared_orphans=False)
    assert not w.watch.violations


def test_second_push_while_first_applies_is_refused_by_the_lock(tmp_path: Path) -> None:
    """B starts while A is between its upload and its PATCH: B is refused (4), A completes."""
    w = World(tmp_path, {"a.md": TEXT, "b.md": TEXT + "b\n"})
    in_apply, b_done = threading.Event(), threading.Event()
    orig = w.b.handle

    def handle(method: str, path: str, *a: Any, **kw: Any) -> Any:
        if method == "POST" and path.endswith("/knowledge-base/text") and not in_apply.is_set():
            in_apply.set()
            assert b_done.wait(10)
        return orig(method, path, *a, **kw)

    w.b.handle = handle  # type: ignore[method-assign]
    results: dict[str, Result] = {}
    with emulate(w.b):
        t = threading.Thread(target=lambda: results.setdefault("A", w.push()), name="push-A")
        t.start()
        assert in_apply.wait(10)
        results["B"] = w.push()
        b_done.set()
        t.join(20)
    assert results["B"].code == 4 and "holds the lock" in results["B"].stderr
    assert results["A"].code == 0, results["A"].stderr
    assert not w.watch.end_state_problems(w.local, allow_shared_orphans=False)
    assert max(w.creates().values()) == 1
    assert not w.watch.violations


def test_push_planned_during_another_run_does_not_upload_again(tmp_path: Path) -> None:
    """B is planning; A starts meanwhile. The lock is held from the plan on, so A is refused
    at once (exit 4, no request written) and B finishes: a.md is uploaded exactly once.

    (Before the fix the lock was taken after planning: a push that planned while another was
    applying uploaded a second copy before the stale-plan check stopped it.)"""
    w = World(tmp_path, {"a.md": TEXT})
    b_planned, a_done = threading.Event(), threading.Event()
    orig = w.b.handle

    def handle(method: str, path: str, *a: Any, **kw: Any) -> Any:
        resp = orig(method, path, *a, **kw)
        if threading.current_thread().name == "push-B" and path == "/v1/convai/knowledge-base":
            b_planned.set()  # B is planning, holding the lock
            assert a_done.wait(10)
        return resp

    w.b.handle = handle  # type: ignore[method-assign]
    results: dict[str, Result] = {}
    with emulate(w.b):
        t = threading.Thread(target=lambda: results.setdefault("B", w.push()), name="push-B")
        t.start()
        assert b_planned.wait(10)
        writes_before = len([c for c in w.b.calls if c.method != "GET"])
        results["A"] = w.push()
        assert len([c for c in w.b.calls if c.method != "GET"]) == writes_before
        a_done.set()
        t.join(20)
        assert results["A"].code == 4 and "holds the lock" in results["A"].stderr
        assert results["B"].code == 0
        assert w.push().code == 0
    assert not w.watch.end_state_problems(w.local, allow_shared_orphans=False)
    assert not w.watch.violations
    assert max(w.creates().values()) == 1, w.creates()


def test_person_edits_managed_entries_between_plan_and_patch(tmp_path: Path) -> None:
    """Stale-plan check: the agent's managed entries change after the plan -> exit 4, the
    person's edit stands, nothing of this run is attached and nothing is deleted."""
    w = World(tmp_path, {"a.md": TEXT, "b.md": TEXT + "b\n"})
    with emulate(w.b):
        assert w.push().code == 0
    (w.dir / "a.md").write_text(TEXT + "new version\n", "utf-8")
    w.local["a.md"] = TEXT + "new version\n"
    victim = next(e for e in w.managed_entries() if e["name"].startswith("kb-sync:b.md#"))
    fired: list[Call] = []

    def person(backend: Backend, call: Call) -> None:
        if not fired and call.path.endswith("/rag-index") and call.method == "POST":
            fired.append(call)
            detach(backend, w.agent, victim["id"])  # the person removes b.md in the UI

    w.b.after_request.append(person)
    w.b.clear_calls()
    with emulate(w.b):
        res = w.push()
    assert fired
    assert res.code == 4, res.stderr
    assert "changed since the plan" in res.stderr
    kb_ids = [e["id"] for e in w.b.agent_kb(w.agent)]
    assert victim["id"] not in kb_ids  # the person's edit stands
    leases = {  # kb-sync's own lease folder, taken and released: not a change to the KB
        str((c.response_json or {}).get("id"))
        for c in w.b.calls
        if c.path.endswith("/folder") and "lease:" in str((c.request_json or {}).get("name"))
    }
    assert [
        c.method
        for c in w.b.calls
        if c.method == "PATCH" or (c.method == "DELETE" and c.path.rsplit("/", 1)[-1] not in leases)
    ] == []
    assert not w.watch.violations
    w.b.after_request.remove(person)
    with emulate(w.b):
        assert w.push().code == 0  # the next run re-plans and converges
    assert not w.watch.end_state_problems(w.local, allow_shared_orphans=False)


@pytest.mark.xfail(
    strict=True,
    reason="known race window (no ETag/If-Match on PATCH /agents): an unmanaged entry a "
    "person adds between the sync's re-read and its PATCH is overwritten; see docs/safety.md",
)
def test_unmanaged_entry_added_between_reread_and_patch_survives(tmp_path: Path) -> None:
    w = World(tmp_path, {"a.md": TEXT})
    agent_gets: list[Call] = []
    extra = w.b.seed_document("Holiday notice", TEXT + "holiday\n")

    def person(backend: Backend, call: Call) -> None:
        if call.method == "GET" and call.path.endswith(w.agent):
            agent_gets.append(call)
            if len(agent_gets) == 3:  # the plan, the re-plan under the lease, the re-read
                backend.attach(w.agent, extra)

    w.b.after_request.append(person)
    with emulate(w.b):
        assert w.push().code == 0
    assert extra in [e["id"] for e in w.b.agent_kb(w.agent)]


@pytest.mark.http
def test_two_subprocess_pushes_at_once_against_loopback(tmp_path: Path) -> None:
    files = {f"doc{i}.md": TEXT + f"doc {i}\n" for i in range(4)}
    w = World(tmp_path, files)
    clock = ScaledClock(0.05, time.time())  # shared with both runs: 20 times as fast
    w.b.clock = clock
    w.b.index_seconds = 3.0
    with serve(w.b) as srv:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(ROOT),
            "ELEVENLABS_BASE_URL": srv.url,
            "KB_SYNC_RECORD_DIR": str(tmp_path / "runs"),
            TIME_SCALE_VAR: clock.env_value(),
            **w.env,
        }
        argv = [sys.executable, "-m", "sync", "push", "--dir", str(w.dir), "--allow-mass-delete"]
        procs = [
            subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]  # fmt: skip
        outs = [p.communicate(timeout=60) for p in procs]
        codes = sorted(p.returncode for p in procs)
        assert set(codes) <= {0, 4}, outs
        assert 0 in codes, outs
        assert all("Traceback" not in e for _, e in outs)
        # the agent never holds duplicates, whatever the interleaving
        names = [e["name"] for e in w.managed_entries()]
        assert len(names) == len(set(names)) <= len(files)
        final = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True,
                               timeout=60)  # fmt: skip
        assert final.returncode == 0, final.stderr
    assert not w.watch.end_state_problems(files, allow_shared_orphans=False)
    assert not [v for v in w.watch.violations if "uploaded" not in v], w.watch.violations
