"""The scenarios, the table and ``reports/bench.json``."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench import calls as C
from bench.baseline import serial_push
from bench.corpus import make_docs, synced_name, write_folder
from bench.emu import MODEL, EmulatorProcess, Spec

LATENCY = 0.02
INDEX_SECONDS = 1.0
PUSH_DOCS = 40
REQ_SIZES = (400, 50)
SCALE_SIZES = (100, 500, 2000)
RATIO_TARGET, RATIO_AIM = 0.25, 0.10


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


RECORDS = ["reports/runs"]  # where the benchmark's runs write their records


def timed_cli(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    """``kb-sync ARGV`` in-process (``sync.testing.run_cli``), timed; its log lines are kept,
    not shown."""
    from sync.testing import run_cli

    c0, t0 = time.process_time(), time.perf_counter()
    res = run_cli(argv, {**env, "KB_SYNC_RECORD_DIR": RECORDS[0]})
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    result = {
        "exit": res.code,
        "seconds": seconds,
        "cpu_seconds": cpu,  # this process only: the sync (the emulator runs in another)
        "stdout": res.stdout,
        "log": res.stderr,
    }
    if res.code != 0:
        log(f"kb-sync {' '.join(argv)} exited {res.code}:\n{res.stderr[-3000:]}")
    return result


def spec(synced: list[tuple[str, str]] | None = None) -> Spec:
    return Spec(latency=LATENCY, index_seconds=INDEX_SECONDS, synced=synced or [])


def synced_of(docs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(synced_name(f, t), t) for f, t in docs]


# ---------------------------------------------------------------------------- 0. calibration


def calibrate(nodelay: bool, n: int = 20) -> float:
    """Mean seconds of one keep-alive GET of the agent (the latency a request really costs)."""
    import requests

    s = Spec(latency=LATENCY, index_seconds=INDEX_SECONDS, nodelay=nodelay)
    with EmulatorProcess(s) as emu, requests.Session() as http:
        http.headers["xi-api-key"] = s.api_key
        url = f"{emu.url}/v1/convai/agents/{emu.agent_id}"
        http.get(url, timeout=10).raise_for_status()
        t0 = time.perf_counter()
        for _ in range(n):
            http.get(url, timeout=10).raise_for_status()
        return (time.perf_counter() - t0) / n


# ---------------------------------------------------------------------------- 1. vs baseline


def bench_push(work: Path) -> dict[str, Any]:
    docs = make_docs(PUSH_DOCS)
    folder = write_folder(work / "push40", docs)
    size = sum(len(t.encode()) for _, t in docs)
    out: dict[str, Any] = {
        "documents": PUSH_DOCS,
        "bytes_per_doc": round(size / PUSH_DOCS),
        "latency_s": LATENCY,
        "index_seconds": INDEX_SECONDS,
    }

    log(f"baseline: serial algorithm, {PUSH_DOCS} new documents (about 45 s)")
    with EmulatorProcess(spec()) as emu:
        t0 = time.perf_counter()
        res = serial_push(emu.url, emu.spec.api_key, emu.agent_id, folder, MODEL)
        seconds = time.perf_counter() - t0
        calls = emu.calls()
        kb = emu.agent_kb()
    out["baseline"] = {
        "seconds": round(seconds, 3),
        "requests": C.breakdown(calls),
        "errors": C.errors(calls),
        "attached": len(kb),
        "indexed": res["indexed"],
        "poll_interval_s": 0.5,
    }

    for conc in (4, 1, 8):
        log(f"push --concurrency {conc}: {PUSH_DOCS} new documents")
        with EmulatorProcess(spec()) as emu:
            r = timed_cli(
                ["push", "--dir", str(folder), "--index-wait", "120", "--concurrency", str(conc)],
                emu.env,
            )
            calls = emu.calls()
            kb = emu.agent_kb()
        key = "push" if conc == 4 else f"push_c{conc}"
        out[key] = {
            "concurrency": conc,
            "exit": r["exit"],
            "seconds": round(r["seconds"], 3),
            "requests": C.breakdown(calls),
            "errors": C.errors(calls),
            "attached": len(kb),
            "ratio": round(r["seconds"] / seconds, 4),
        }
    out["ratio"] = out["push"]["ratio"]
    out["target_met"] = out["ratio"] <= RATIO_TARGET and out["push"]["attached"] == PUSH_DOCS
    out["aim_met"] = out["ratio"] <= RATIO_AIM
    return out


# ---------------------------------------------------------------------------- 2. requests


def bench_requests(work: Path, n: int) -> dict[str, Any]:
    docs = make_docs(n)
    folder = write_folder(work / f"req{n}", docs)
    out: dict[str, Any] = {"documents": n}
    log(f"requests: {n}-document folder, nothing to do / 1-document update")
    with EmulatorProcess(spec(synced_of(docs))) as emu:
        r = timed_cli(["push", "--dir", str(folder)], emu.env)
        calls = emu.calls()
        b = C.breakdown(calls)
        out["nothing_to_do"] = {
            "exit": r["exit"],
            "seconds": round(r["seconds"], 3),
            "requests": b,
            "formula": C.nothing_formula(n),
            "formula_matches": b["total"] == C.nothing_formula(n),
            "limit": 1 + -(-n // 100) + 1,
            "target_met": r["exit"] == 0 and b["total"] <= 1 + -(-n // 100) + 1,
        }

        name, text = docs[0]
        (folder / name).write_text(text + "\nОбновлено: новая редакция раздела.\n", "utf-8")
        emu.clear_calls()
        r = timed_cli(["push", "--dir", str(folder), "--index-wait", "120"], emu.env)
        calls = emu.calls()
        b = C.breakdown(calls)
        kb = emu.agent_kb()
        polls = b.get("index polls", 0)
        formula = C.update_formula(n, 1, polls, 1)
        out["update_1"] = {
            "exit": r["exit"],
            "seconds": round(r["seconds"], 3),
            "requests": b,
            "errors": C.errors(calls),
            "formula": formula,
            "formula_matches": b["total"] == formula,
            "attached": len(kb),
            "documents_after": emu.doc_count(),
            "target_met": r["exit"] == 0
            and b.get("PATCH") == 1
            and b.get("DELETE") == 1
            and b.get("create") == 2  # the document, and the run's record in .kb-sync
            and b["total"] == formula,
        }

        emu.clear_calls()
        r = timed_cli(["push", "--dir", str(folder), "--strict-hash"], emu.env)
        calls = emu.calls()
        b = C.breakdown(calls)
        out["strict_nothing_to_do"] = {
            "exit": r["exit"],
            "seconds": round(r["seconds"], 3),
            "requests": b,
            "formula": C.nothing_formula(n) + n,
            "formula_matches": b["total"] == C.nothing_formula(n) + n,
            "writes": sum(v for k, v in b.items() if k in ("create", "PATCH", "DELETE")),
        }
    return out


# ---------------------------------------------------------------------------- 3. scale


def bench_scale(work: Path, n: int, repeats: int = 5) -> dict[str, Any]:
    docs = make_docs(n)
    folder = write_folder(work / f"scale{n}", docs)
    log(f"scale: plan over {n} documents")
    with EmulatorProcess(spec(synced_of(docs))) as emu:
        times, cpus = [], []
        for i in range(repeats):
            emu.clear_calls()
            r = timed_cli(["plan", "--dir", str(folder), "--detailed-exitcode"], emu.env)
            if r["exit"] != 0:
                raise RuntimeError(f"plan over {n} documents exited {r['exit']} (expected 0)")
            times.append(r["seconds"])
            cpus.append(r["cpu_seconds"])
            if i == 0:
                b = C.breakdown(emu.calls())
        tracemalloc.start()
        try:
            t0 = time.perf_counter()
            r = timed_cli(["plan", "--dir", str(folder), "--detailed-exitcode"], emu.env)
            traced = time.perf_counter() - t0
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    wall, cpu = statistics.median(times), statistics.median(cpus)
    return {
        "documents": n,
        "seconds": round(wall, 4),
        "seconds_runs": [round(t, 4) for t in times],
        "ms_per_doc": round(1000 * wall / n, 4),
        "cpu_seconds": round(cpu, 4),
        "cpu_ms_per_doc": round(1000 * cpu / n, 4),
        "requests": b,
        "peak_bytes": peak,
        "peak_kib_per_doc": round(peak / 1024 / n, 3),
        "seconds_under_tracemalloc": round(traced, 4),
    }


def linearity(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Least-squares line through (documents, key) and the marginal cost per segment."""
    xs = [float(r["documents"]) for r in rows]
    ys = [float(r[key]) for r in rows]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    icpt = my - slope * mx
    ss_tot = sum((y - my) ** 2 for y in ys) or 1.0
    r2 = 1 - sum((y - (icpt + slope * x)) ** 2 for x, y in zip(xs, ys, strict=True)) / ss_tot
    marg = [(ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i]) for i in range(len(xs) - 1)]
    per_doc = [y / x for x, y in zip(xs, ys, strict=True)]
    # Linear or better: the cost per document at 2,000 is at most 1.5x that at 500 (a
    # quadratic cost would make it 4x). Marginal costs are shown too, but between two noisy
    # medians they swing more than the per-document averages.
    growth = per_doc[-1] / per_doc[-2] if per_doc[-2] > 0 else float("inf")
    ok = growth <= 1.5
    return {
        "slope_per_doc": slope,
        "intercept": icpt,
        "r2": round(r2, 5),
        "marginal_per_doc": marg,
        "per_doc": per_doc,
        "per_doc_growth_last_step": round(growth, 3),
        "linear": ok,
    }


# ---------------------------------------------------------------------------- table


def fmt_s(x: float) -> str:
    return f"{x:.2f}" if x >= 0.1 else f"{x * 1000:.0f} ms"


def table(res: dict[str, Any]) -> str:
    p = res["push_vs_baseline"]
    rows: list[tuple[str, ...]] = [
        ("scenario", "docs", "wall", "requests", "peak mem", "vs baseline", "target", "met"),
    ]
    base = p["baseline"]["seconds"]
    rows.append(
        (
            "baseline: serial algorithm, 40 new",
            "40",
            fmt_s(base),
            str(p["baseline"]["requests"]["total"]),
            "-",
            "1.00",
            "-",
            "-",
        )
    )
    for key, label in (
        ("push", "push (concurrency 4, default)"),
        ("push_c1", "push c=1"),
        ("push_c8", "push c=8"),
    ):
        r = p[key]
        is_main = key == "push"
        rows.append(
            (
                f"{label}, 40 new",
                "40",
                fmt_s(r["seconds"]),
                str(r["requests"]["total"]),
                "-",
                f"{r['ratio']:.3f}",
                "<= 0.25 (aim 0.10)" if is_main else "info",
                ("yes" if p["target_met"] else "NO")
                + (" (aim yes)" if is_main and p["aim_met"] else " (aim no)" if is_main else "")
                if is_main
                else "-",
            )
        )
    for n_key, r in res["requests"].items():
        n = r["documents"]
        nt = r["nothing_to_do"]
        rows.append(
            (
                "push, nothing to do",
                str(n),
                fmt_s(nt["seconds"]),
                str(nt["requests"]["total"]),
                "-",
                "-",
                f"<= {nt['limit']}",
                "yes" if nt["target_met"] else "NO",
            )
        )
        u = r["update_1"]
        rows.append(
            (
                "push, 1-document update",
                str(n),
                fmt_s(u["seconds"]),
                str(u["requests"]["total"]),
                "-",
                "-",
                f"= formula {u['formula']}",
                "yes" if u["target_met"] else "NO",
            )
        )
        s = r["strict_nothing_to_do"]
        rows.append(
            (
                "push --strict-hash, nothing to do",
                str(n),
                fmt_s(s["seconds"]),
                str(s["requests"]["total"]),
                "-",
                "-",
                f"info (N+{s['formula'] - n})",
                "-",
            )
        )
        del n_key
    sc = res["scale"]
    for r in sc["runs"]:
        rows.append(
            (
                "plan (read-only), all synced",
                str(r["documents"]),
                fmt_s(r["seconds"]),
                str(r["requests"]["total"]),
                f"{r['peak_bytes'] / 2**20:.1f} MiB",
                "-",
                f"{r['ms_per_doc']:.3f} ms/doc wall, {r['cpu_ms_per_doc']:.3f} cpu",
                "linear"
                if all(sc[k]["linear"] for k in ("time_fit", "cpu_fit", "memory_fit"))
                else "NO",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for j, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def breakdown_table(res: dict[str, Any]) -> str:
    cols: list[tuple[str, dict[str, int]]] = []
    for r in res["requests"].values():
        n = r["documents"]
        cols.append((f"nothing/{n}", r["nothing_to_do"]["requests"]))
        cols.append((f"update1/{n}", r["update_1"]["requests"]))
    keys = [k for k in (*C.ORDER, "total") if any(k in b for _, b in cols)]
    head = ["endpoint", *[c for c, _ in cols]]
    rows = [head] + [[k, *[str(b.get(k, 0)) for _, b in cols]] for k in keys]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join(
            c.rjust(w) if i else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )


# ---------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--out", default="reports/bench.json", help="where to write the JSON")
    ap.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed (default: report)"
    )
    args = ap.parse_args(argv)
    started = time.perf_counter()
    res: dict[str, Any] = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "parameters": {
            "latency_s_per_request": LATENCY,
            "index_seconds_per_document": INDEX_SECONDS,
            "emulator": "sync.emulator served on 127.0.0.1 in its own process",
            "emulator_tcp_nodelay": True,
            "clock": "time.perf_counter (real time)",
        },
    }
    with tempfile.TemporaryDirectory(prefix="kb-sync-bench-") as tmp:
        work = Path(tmp)
        RECORDS[0] = str(work / "runs")  # keep reports/runs clean
        try:
            log("calibration: one request's round trip on loopback")
            res["parameters"]["request_seconds_measured"] = round(calibrate(True), 4)
            res["parameters"]["request_seconds_without_tcp_nodelay"] = round(calibrate(False), 4)
            res["push_vs_baseline"] = bench_push(work)
            res["requests"] = {str(n): bench_requests(work, n) for n in REQ_SIZES}
            runs = [bench_scale(work, n) for n in SCALE_SIZES]
        finally:
            RECORDS[0] = "reports/runs"
    res["scale"] = {
        "runs": runs,
        "time_fit": linearity(runs, "seconds"),
        "cpu_fit": linearity(runs, "cpu_seconds"),
        "memory_fit": linearity(runs, "peak_bytes"),
    }
    p = res["push_vs_baseline"]
    targets = {
        "push_40_ratio_le_0.25": p["target_met"],
        "push_40_ratio_le_0.10_aim": p["aim_met"],
        "nothing_to_do_400_le_6": res["requests"]["400"]["nothing_to_do"]["target_met"],
        "update_1_400_formula": res["requests"]["400"]["update_1"]["target_met"],
        "scale_linear_wall": res["scale"]["time_fit"]["linear"],
        "scale_linear_cpu": res["scale"]["cpu_fit"]["linear"],
        "scale_linear_memory": res["scale"]["memory_fit"]["linear"],
    }
    res["targets"] = targets
    res["bench_seconds"] = round(time.perf_counter() - started, 1)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    pr = res["parameters"]
    print(
        f"one request on loopback: {pr['request_seconds_measured'] * 1000:.1f} ms "
        f"(injected {LATENCY * 1000:.0f} ms; "
        f"{pr['request_seconds_without_tcp_nodelay'] * 1000:.1f} ms without TCP_NODELAY)"
    )
    print(table(res))
    print()
    print("requests by endpoint (from the emulator's call log):")
    print(breakdown_table(res))
    print()
    sc = res["scale"]
    for label, key, unit, div in (
        ("wall", "time_fit", "ms", 1e-3),
        ("sync cpu", "cpu_fit", "ms", 1e-3),
        ("peak memory", "memory_fit", "KiB", 1024),
    ):
        f = sc[key]
        per = " / ".join(f"{m / div:.3f}" for m in f["per_doc"])
        marg = " / ".join(f"{m / div:.3f}" for m in f["marginal_per_doc"])
        print(
            f"scale, {label}: {unit}/doc at 100/500/2000 = {per} (x{f['per_doc_growth_last_step']}"
            f" from 500 to 2000); marginal 100-500/500-2000 = {marg}; fit "
            f"{f['slope_per_doc'] / div:.3f} {unit}/doc, R2 {f['r2']}: "
            f"{'linear' if f['linear'] else 'NOT linear'}"
        )
    verdicts = ", ".join(f"{k}={'met' if v else 'MISSED'}" for k, v in targets.items())
    print(f"targets: {verdicts}")
    print(f"wrote {out} in {res['bench_seconds']} s")
    missed = [k for k, v in targets.items() if not v and not k.endswith("_aim")]
    return 1 if args.strict and missed else 0
