"""A push under a server that limits requests in flight (issue 16's target).

40 new documents (1 s indexing, 20 ms a request, as the push scenario of :mod:`bench.run`)
against the emulator in its own process with a limit of 4 requests in flight: more are
answered 429 ``too_many_concurrent_requests`` (``sync/emulator/admission.py``). The target:
``--concurrency 16`` ends exit 0 with every document synced, in at most 1.5x the time of
``--concurrency 4``, with fewer than 60 answers of 429.

``run_limited(concurrency)`` is one run; ``run_storm(concurrency, k)`` the same push with no
limit after K consecutive 429s; ``python -m bench.limited [--repeats N]`` prints the medians for
4, 8 and 16.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.corpus import make_docs, write_folder
from bench.emu import EmulatorProcess, Spec

DOCS = 40
LIMIT = 4
LATENCY = 0.02
INDEX_SECONDS = 1.0


def run_storm(concurrency: int, k: int = 30, *, docs: int = DOCS) -> dict[str, Any]:
    """The same push, no limit, after a storm: the first ``k`` requests answered 429."""
    return run_limited(concurrency, docs=docs, limit=None, storm=k)


def run_limited(
    concurrency: int,
    *,
    docs: int = DOCS,
    limit: int | None = LIMIT,
    storm: int = 0,
    work: Path | None = None,
) -> dict[str, Any]:
    """One push of ``docs`` new documents with ``--concurrency`` against a server limited to
    ``limit`` in flight (None: no limit): wall seconds, requests, 429 answers, exit code,
    documents attached."""
    from sync.emulator import FaultRule, RemoteEmulator
    from sync.emulator import storm as storm_of
    from sync.testing import run_cli

    with tempfile.TemporaryDirectory(dir=work) as tmp:
        folder = write_folder(Path(tmp) / "docs", make_docs(docs))
        with EmulatorProcess(Spec(latency=LATENCY, index_seconds=INDEX_SECONDS)) as emu:
            remote = RemoteEmulator(emu.url)
            remote.set_concurrency_limit(limit)
            if storm:  # first, before the latency rule (the first matching rule wins)
                remote.clear_faults()
                rule = storm_of(storm)
                rule.latency = LATENCY
                remote.add_fault(rule)
                remote.add_fault(FaultRule(times=None, latency=LATENCY))
            env = {**emu.env, "KB_SYNC_RECORD_DIR": str(Path(tmp) / "runs")}
            argv = ["push", "--dir", str(folder), "--index-wait", "120"]
            t0 = time.perf_counter()
            res = run_cli([*argv, "--concurrency", str(concurrency)], env)
            seconds = time.perf_counter() - t0
            calls = emu.calls()
            attached = len(emu.agent_kb())
    settled = [ln for ln in res.stderr.splitlines() if "concurrency.settled" in ln]
    return {
        "concurrency": concurrency,
        "limit": limit,
        "documents": docs,
        "seconds": round(seconds, 3),
        "requests": len(calls),
        "429": sum(1 for c in calls if c.status == 429),
        "exit": res.code,
        "attached": attached,
        "settled": settled[-1].split("concurrency.settled", 1)[1].strip() if settled else None,
    }


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "concurrency": runs[0]["concurrency"],
        "seconds_median": round(statistics.median(r["seconds"] for r in runs), 3),
        "seconds": [r["seconds"] for r in runs],
        "requests": [r["requests"] for r in runs],
        "429": [r["429"] for r in runs],
        "exit": [r["exit"] for r in runs],
        "attached": [r["attached"] for r in runs],
        "settled": [r["settled"] for r in runs],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.limited")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--concurrency", type=int, nargs="*", default=[4, 8, 16])
    args = p.parse_args(argv)
    table = []
    for conc in args.concurrency:
        runs = [run_limited(conc) for _ in range(args.repeats)]
        table.append(medians(runs))
        print(json.dumps(table[-1], ensure_ascii=False), file=sys.stderr, flush=True)
    base = next((r for r in table if r["concurrency"] == 4), None)
    for row in table:
        if base:
            row["ratio_to_c4"] = round(row["seconds_median"] / base["seconds_median"], 2)
    print(json.dumps(table, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
