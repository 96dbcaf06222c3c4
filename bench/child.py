"""``kb-sync`` as a child process, measured from outside: wall time, CPU and peak RSS.

The child is ``python -m sync ARGV`` with the given environment, exactly as cron runs it. Its
resources come from ``os.wait4`` (this child's own ``rusage``, not every child's maximum as
``RUSAGE_CHILDREN`` would give): ``ru_maxrss`` is the peak resident set in KiB on Linux, CPU
is user + system time. The wall time includes the interpreter's start-up, measured on its own
by :func:`startup`.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 900.0  # seconds: a run that takes longer is a hang, not a measurement


def run_child(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> dict[str, Any]:
    """Run ``python -m sync ARGV``; its exit code, wall seconds, CPU seconds, peak RSS bytes
    and log (stderr)."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    full = {**keep, **env, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "sync", *argv], env=full, cwd=cwd, stdout=out, stderr=err
        )
        deadline = t0 + TIMEOUT
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        err.seek(0)
        log = err.read()
    return {
        "exit": proc.returncode,
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "max_rss_bytes": usage.ru_maxrss * 1024,  # KiB on Linux
        "log": log,
    }


def startup(repeats: int = 5) -> dict[str, float]:
    """Median wall seconds and peak RSS of ``python -m sync --help``: what every child run
    pays before its first request."""
    runs = [run_child(["--help"], {}) for _ in range(repeats)]
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "max_rss_bytes": statistics.median(r["max_rss_bytes"] for r in runs),
    }
