"""Two machines (separate temp dirs, homes and folders: no file lock in common) push different
versions of the folder to one agent at the same moment, against the emulator on loopback.

Every trial must end with one version fully on the agent (every file attached to an indexed
document holding that version's text, no duplicates) and the other run exiting 4 (the lease),
or both succeeding one after the other; never a half agent.

The emulator and both runs share one :class:`~sync.clock.ScaledClock` (``KB_SYNC_TEST_TIME_SCALE``
for the subprocesses): the lease's and the folder's same-second ties, their jittered back-offs
and the index waits happen as they would, on a clock that runs 20 times faster."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sync.clock import TIME_SCALE_VAR, ScaledClock
from sync.emulator import Backend, serve
from tests.canary import CANARY_KEY

ROOT = Path(__file__).resolve().parents[2]
TRIALS = 20
FILES = ("2025-Q1.md", "2025-Q2.md", "2025-Q3.md")
SCALE = 0.05  # one second of the shared clock is 50 ms of real time


def version(tag: str) -> dict[str, str]:
    body = "Revenue, costs and rent of the quarter, as the monitoring reported them.\n\n" * 8
    return {f: f"# {f} ({tag})\n\n{body}version {tag}\n" for f in FILES}


def machine(tmp: Path, name: str, files: dict[str, str]) -> dict[str, Path]:
    home = tmp / name
    for sub in ("home", "tmp", "cwd", "quarters"):
        (home / sub).mkdir(parents=True)
    for f, t in files.items():
        (home / "quarters" / f).write_text(t, "utf-8")
    return {k: home / k for k in ("home", "tmp", "cwd", "quarters")}


def on_agent(b: Backend, agent: str) -> dict[str, str]:
    """file -> text of the agent's attached, indexed managed documents (duplicates fail)."""
    out: dict[str, str] = {}
    for e in b.agent_kb(agent):
        file = str(e["name"]).split(":", 1)[1].rsplit("#", 1)[0]
        assert file not in out, f"duplicate entry for {file}"
        assert b.index_status(e["id"]) == "succeeded", f"{file}: not indexed"
        out[file] = b.docs[e["id"]].text
    return out


@pytest.mark.http
def test_two_machines_pushing_different_versions_at_once_never_leave_a_half_agent(
    tmp_path: Path,
) -> None:
    clock = ScaledClock(SCALE, time.time())
    b = Backend(api_key=CANARY_KEY, clock=clock, index_seconds=3.0)
    v1, v2 = version("v1"), version("v2")
    outcomes: dict[str, int] = {}
    ties = 0  # same-second ties of the lease or the folder, resolved by a jittered back-off
    with serve(b) as srv:
        for trial in range(TRIALS):
            agent = b.seed_agent(name=f"Agent {trial}")
            runs = []
            for name, files in (("a", v1), ("b", v2)):
                m = machine(tmp_path / f"t{trial}", name, files)
                env = {
                    "PATH": os.environ.get("PATH", ""),
                    "PYTHONPATH": str(ROOT),
                    "HOME": str(m["home"]),
                    "TMPDIR": str(m["tmp"]),
                    "ELEVENLABS_API_KEY": CANARY_KEY,
                    "ELEVENLABS_AGENT_ID": agent,
                    "ELEVENLABS_BASE_URL": srv.url,
                    "KB_SYNC_RECORD_DIR": str(m["home"] / "runs"),
                    "RAG_INDEXING_TIMEOUT": "120",
                    TIME_SCALE_VAR: clock.env_value(),
                }
                argv = [sys.executable, "-m", "sync", "push", "--dir", str(m["quarters"])]
                runs.append(
                    subprocess.Popen(
                        argv,
                        env=env,
                        cwd=m["cwd"],
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                    )
                )
            outs = [p.communicate(timeout=120) for p in runs]
            codes = [p.returncode for p in runs]
            assert all("Traceback" not in err for _, err in outs), outs
            assert sorted(codes) in ([0, 4], [0, 0]), (codes, [err[-6000:] for _, err in outs])
            final = on_agent(b, agent)
            assert final in (v1, v2), f"trial {trial}: a half agent: {sorted(final)}"
            if codes.count(4) == 1:
                refused = outs[codes.index(4)][1]
                assert "holds the lease" in refused or "changed since the plan" in refused
                winner = (v1, v2)[codes.index(0)]
                assert final == winner
            key = "one refused (4)" if 4 in codes else "both applied, one after the other"
            outcomes[key] = outcomes.get(key, 0) + 1
            ties += sum(err.count("lease.tie") + err.count("folder.tie") for _, err in outs)
    print(f"two machines, {TRIALS} trials: {outcomes}, {ties} same-second ties")
