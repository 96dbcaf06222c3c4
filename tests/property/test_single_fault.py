"""One push, one fault (or one kill), then a clean push: dense and quick to shrink.

The state machine explores long histories; this test hits every fault at every kind of run
(first upload, update, removal) far more often per second, so the CI profile finds a blind
create retry or an early attach within its budget. Same invariants (``Watch``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import given, note, settings
from hypothesis import strategies as st

from sync.clock import FakeClock
from sync.emulator import Backend, FaultRule, rate_limited, server_error
from sync.testing import run_cli
from tests.canary import CANARY_KEY
from tests.property.harness import (
    FILES,
    SIZES,
    STATS,
    Crasher,
    Watch,
    env_for,
    expire_crashed_leases,
    make_text,
    same_size_edit,
)

FAULT = st.one_of(
    st.builds(
        lambda ra, m, t: ("429", rate_limited(ra, method=m, times=t)),
        st.sampled_from([None, 0, 2]),
        st.sampled_from(["*", "GET", "POST", "PATCH", "DELETE"]),
        st.integers(1, 3),
    ),
    st.builds(
        lambda s, m, p, t: (str(s), server_error(s, method=m, path=p, times=t)),
        st.sampled_from([500, 502, 503]),
        st.sampled_from(["*", "POST", "PATCH", "DELETE"]),
        st.sampled_from(["", r"/knowledge-base/text$", r"/agents/", r"/rag-index$"]),
        st.integers(1, 3),
    ),
    st.builds(
        lambda mp, t: (
            f"drop-after-commit {mp[0]} {mp[1]}",
            FaultRule(method=mp[0], path=mp[1], times=t, drop_after_commit=True),
        ),
        st.sampled_from(
            [
                ("POST", r"/knowledge-base/text$"),
                ("PATCH", r"/agents/"),
                ("DELETE", r"/knowledge-base/"),
                ("POST", r"/rag-index$"),
            ]
        ),
        st.integers(1, 2),
    ),
    st.tuples(st.just("linger"), st.integers(1, 7)),
    st.tuples(st.sampled_from(["index-failed", "index-stuck"]), st.sampled_from([1, 3, None])),
    st.tuples(st.just("quota"), st.sampled_from([0, 400, 1000])),
)
DOCS = st.dictionaries(
    st.sampled_from(FILES), st.tuples(st.sampled_from(SIZES), st.booleans()), min_size=1
)


def _apply_fault(b: Backend, kind: str, arg: object) -> None:
    if isinstance(arg, FaultRule):
        b.add_fault(arg)
    elif kind == "linger":
        b.linger(int(arg))  # type: ignore[call-overload]
    elif kind.startswith("index-"):
        b.set_index_behaviour("kb-sync:", kind.split("-")[1], arg)  # type: ignore[arg-type]
    elif kind == "quota":
        b.set_quota(b.used_bytes() + int(arg))  # type: ignore[call-overload]


@settings(
    settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci")),
    max_examples=4 * settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci")).max_examples,
)
@given(
    before=DOCS,
    change=st.sampled_from(["update", "same-size", "remove", "add", "none"]),
    fault=st.one_of(st.none(), FAULT),
    crash=st.one_of(st.none(), st.integers(1, 30)),
    after_commit=st.booleans(),
    concurrency=st.sampled_from([1, 4]),
)
def test_one_faulty_push_then_convergence(
    before: dict[str, tuple[int, bool]],
    change: str,
    fault: tuple[str, object] | None,
    crash: int | None,
    after_commit: bool,
    concurrency: int,
) -> None:
    STATS["examples"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "q"
        folder.mkdir()
        clock = FakeClock()
        b = Backend(api_key=CANARY_KEY, clock=clock, index_seconds=3.0, seed=3)
        agent = b.seed_agent()
        watch = Watch(b, agent)
        watch.install()
        crasher = Crasher(b)
        local: dict[str, str] = {}
        for i, (file, (size, cyr)) in enumerate(sorted(before.items())):
            local[file] = make_text(size, cyr, i)
            (folder / file).write_text(local[file], "utf-8")
        env = env_for(agent, CANARY_KEY, KB_SYNC_RECORD_DIR=str(Path(tmp) / "runs"))
        argv = ["push", "--dir", str(folder), "--index-wait", "40", "--allow-mass-delete"]
        assert run_cli(argv, env, backend=b, clock=clock).code == 0
        first = sorted(local)[0]
        if change == "update":
            local[first] = make_text(777, True, 99)
        elif change == "same-size":
            local[first] = same_size_edit(local[first], 1)
        elif change == "add":
            local["zz new.md"] = make_text(640, False, 42)
        if change == "remove":
            del local[first]
            (folder / first).unlink()
        else:
            for f, t in local.items():
                (folder / f).write_text(t, "utf-8")
        if fault is not None:
            _apply_fault(b, *fault)
            STATS["faults"][fault[0]] += 1
        crasher.arm(crash, after_commit)
        res = run_cli(argv + ["--concurrency", str(concurrency)], env, backend=b, clock=clock)
        STATS["crashes"] += int(crasher.fired)
        STATS["crashes_after_commit"] += int(crasher.fired and after_commit)
        STATS["pushes"] += 1
        STATS["exit_codes"]["crash" if res.killed else str(res.code)] += 1
        note(f"faulty push: exit {res.code} crashed={res.killed}\n{res.stderr[-2000:]}")
        assert "Traceback" not in res.stderr
        assert not watch.violations, watch.violations
        if res.code == 0:
            assert not watch.end_state_problems(local, allow_shared_orphans=False)
        # the service recovers
        b.clear_faults()
        b.behaviours.clear()
        b.linger(0)
        b.set_quota(20 * 1024 * 1024)
        for idx in b.indexes.values():
            if idx.fate == "stuck" and idx.terminal is None:
                idx.fate = None
        crasher.arm(None)
        expire_crashed_leases(b, clock)
        res = run_cli(argv, env, backend=b, clock=clock)
        STATS["convergence_pushes"] += 1
        assert res.code == 0, res.stderr[-3000:]
        assert not watch.violations, watch.violations
        assert not watch.end_state_problems(local, allow_shared_orphans=False)
        # and zero churn afterwards
        res = run_cli(argv + ["--strict-hash"], env, backend=b, clock=clock)
        assert res.code == 0
        assert all(c.method == "GET" for c in res.calls)
        STATS["requests_checked"] += watch.requests_checked
