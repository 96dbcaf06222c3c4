"""The push scale curve: ``kb-sync push`` of N new documents, N = 100 / 500 / 2,000 (and
5,000 with ``BENCH_5000=1``), as a child process against a fresh emulator each run.

Per size: the medians of ``repeats`` runs of wall time, CPU and peak RSS of the kb-sync
process (:mod:`bench.child`), the requests by endpoint (from the emulator's call log), the
documents attached; then one more push of the same folder, which has nothing to do, for its
request count (the target ``1 + ceil(N/100)``).
"""

from __future__ import annotations

import math
import os
import statistics
from pathlib import Path
from typing import Any

from bench import calls as C
from bench.child import run_child
from bench.corpus import make_docs, write_folder
from bench.emu import EmulatorProcess, Spec

SIZES = (100, 500, 2000)
BIG = 5000  # with BENCH_5000=1: about a minute and a half more a run
INDEX_WAIT = "1800"  # seconds: far more than any size needs; the runs must end exit 0


def sizes() -> tuple[int, ...]:
    return (*SIZES, BIG) if os.environ.get("BENCH_5000", "") not in ("", "0") else SIZES


def one_push(folder: Path, spec: Spec, records: Path) -> dict[str, Any]:
    """A fresh emulator, one push of the folder (all new), then one that has nothing to do."""
    with EmulatorProcess(spec) as emu:
        env = {**emu.env, "KB_SYNC_RECORD_DIR": str(records)}
        r = run_child(["push", "--dir", str(folder), "--index-wait", INDEX_WAIT], env)
        calls = emu.calls()
        attached = len(emu.agent_kb())
        emu.clear_calls()
        again = run_child(["push", "--dir", str(folder)], env)
        again_calls = emu.calls()
    r["requests"] = C.breakdown(calls)
    r["status_429"] = sum(1 for c in calls if c.status == 429)
    r["attached"] = attached
    r["nothing_to_do"] = {"exit": again["exit"], "requests": len(again_calls)}
    return r


def bench_push_size(work: Path, n: int, spec: Spec, repeats: int, log: Any) -> dict[str, Any]:
    folder = write_folder(work / f"scale{n}", make_docs(n))
    runs = []
    for i in range(repeats):
        log(f"scale: push of {n} new documents ({i + 1}/{repeats})")
        runs.append(one_push(folder, spec, work / "runs"))
        if runs[-1]["exit"] != 0:
            log(f"push of {n} documents exited {runs[-1]['exit']}:\n{runs[-1]['log'][-3000:]}")
    med = {
        k: statistics.median(float(r[k]) for r in runs)
        for k in ("seconds", "cpu_seconds", "max_rss_bytes")
    }
    totals = [r["requests"]["total"] for r in runs]
    middle = min(runs, key=lambda r: abs(r["requests"]["total"] - statistics.median(totals)))
    limit = 1 + math.ceil(n / 100)
    nothing = [r["nothing_to_do"]["requests"] for r in runs]
    return {
        "documents": n,
        "seconds": round(med["seconds"], 3),
        "seconds_runs": [round(r["seconds"], 3) for r in runs],
        "ms_per_doc": round(1000 * med["seconds"] / n, 3),
        "cpu_seconds": round(med["cpu_seconds"], 3),
        "cpu_ms_per_doc": round(1000 * med["cpu_seconds"] / n, 3),
        "max_rss_bytes": int(med["max_rss_bytes"]),
        "max_rss_runs": [r["max_rss_bytes"] for r in runs],
        "requests": middle["requests"],  # the run with the median total
        "requests_runs": totals,
        "status_429": [r["status_429"] for r in runs],
        "exit": [r["exit"] for r in runs],
        "attached": [r["attached"] for r in runs],
        "nothing_to_do_requests": nothing,
        "nothing_to_do_limit": limit,
        "nothing_to_do_met": all(x <= limit for x in nothing),
    }


def bench_push_scale(work: Path, spec: Spec, repeats: int, log: Any) -> list[dict[str, Any]]:
    return [bench_push_size(work, n, spec, repeats, log) for n in sizes()]
