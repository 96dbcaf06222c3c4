"""What ``python -m bench`` prints: the scenario table, requests by endpoint, the scale curve,
the limited server and the targets (all from the result dict :mod:`bench.run` builds)."""

from __future__ import annotations

import statistics
from typing import Any

from bench import calls as C

MIB = 2**20


def linearity(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Least-squares line through (documents, key), the cost per document at each size and
    its growth from the second size (500) to the last: linear when it grows at most 1.5x (a
    quadratic cost would make it 4x from 500 to 2,000, 10x to 5,000)."""
    xs = [float(r["documents"]) for r in rows]
    ys = [float(r[key]) for r in rows]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    icpt = my - slope * mx
    ss_tot = sum((y - my) ** 2 for y in ys) or 1.0
    r2 = 1 - sum((y - (icpt + slope * x)) ** 2 for x, y in zip(xs, ys, strict=True)) / ss_tot
    per_doc = [y / x for x, y in zip(xs, ys, strict=True)]
    ref = per_doc[1] if len(per_doc) > 2 else per_doc[0]
    growth = per_doc[-1] / ref if ref > 0 else float("inf")
    return {
        "slope_per_doc": slope,
        "intercept": icpt,
        "r2": round(r2, 5),
        "per_doc": per_doc,
        "per_doc_growth": round(growth, 3),
        "linear": growth <= 1.5,
    }


def fmt_s(x: float) -> str:
    return f"{x:.2f} s" if x >= 0.1 else f"{x * 1000:.0f} ms"


def grid(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for j, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def yes(flag: bool | None) -> str:
    return "-" if flag is None else "yes" if flag else "NO"


def push_rows(p: dict[str, Any]) -> list[list[str]]:
    b = p["baseline"]
    rows = [["baseline: serial algorithm, 40 new", fmt_s(b["seconds"])]]
    rows[0] += [str(b["requests"]["total"]), "-", "1.00", "-", "-"]
    for key in ("push", *(k for k in p if k.startswith("push_c"))):
        r = p[key]
        main = key == "push"
        rows.append(
            [
                f"push --concurrency {r['concurrency']}, 40 new",
                fmt_s(r["seconds"]),
                str(r["requests"]["total"]),
                str(max(r["status_429"])),
                f"{r['ratio']:.3f}",
                "<= 0.05, <= 60 requests" if main else "info",
                f"{yes(p['ratio_met'])}, {yes(p['requests_met'])}" if main else "-",
            ]
        )
    return rows


def request_rows(res: dict[str, Any]) -> list[list[str]]:
    rows = []
    for r in res["requests"].values():
        n, nt, u, s = r["documents"], r["nothing_to_do"], r["update_1"], r["strict"]
        rows.append([f"push, nothing to do ({n} docs)", fmt_s(nt["seconds"])])
        rows[-1] += [str(nt["requests"]["total"]), "0", "-", f"<= {nt['limit']}"]
        rows[-1].append(yes(nt["target_met"]))
        rows.append([f"push, 1-document update ({n} docs)", fmt_s(u["seconds"])])
        rows[-1] += [str(u["requests"]["total"]), str(max(u["status_429"])), "-"]
        rows[-1] += [f"= formula {u['formula']}", yes(u["target_met"])]
        rows.append([f"push --strict-hash, nothing to do ({n})", fmt_s(s["seconds"])])
        rows[-1] += [str(s["requests"]["total"]), "0", "-", f"info (N + {s['formula'] - n})", "-"]
    return rows


def scale_rows(sc: dict[str, Any]) -> list[list[str]]:
    head = ["push, N new", "wall", "per doc", "requests", "429s", "peak RSS", "cpu", "no-op req"]
    rows = [head]
    for r in sc["runs"]:
        n = r["documents"]
        rows.append(
            [
                f"{n:,}",
                fmt_s(r["seconds"]),
                f"{r['ms_per_doc']:.2f} ms",
                str(r["requests"]["total"]),
                str(max(r["status_429"])),
                f"{r['max_rss_bytes'] / MIB:.1f} MiB",
                fmt_s(r["cpu_seconds"]),
                f"{max(r['nothing_to_do_requests'])} (<= {r['nothing_to_do_limit']})",
            ]
        )
    return rows


def limited_lines(lim: dict[str, Any]) -> list[str]:
    if "skipped" in lim:
        return [f"limited server: SKIPPED ({lim['skipped']})"]
    out = []
    for key in ("c16", "c4"):
        r = lim[key]
        out.append(
            f"limited server (4 in flight), --concurrency {key[1:]}: {fmt_s(r['seconds'])} "
            f"(runs {r['seconds_runs']}), requests {r['requests_runs']}, 429s {r['status_429']}, "
            f"exit {r['exit']}, attached {r['attached']}, settled {r['settled']}"
        )
    out.append(
        f"limited server: --concurrency 16 takes {lim['ratio_16_to_4']}x the time of 4 "
        f"(target <= 1.5x, exit 0, every doc, < 60 429s): {yes(lim['target_met'])}"
    )
    return out


def breakdown(res: dict[str, Any]) -> str:
    cols: list[tuple[str, dict[str, int]]] = []
    for r in res["requests"].values():
        n = r["documents"]
        cols += [(f"nothing/{n}", r["nothing_to_do"]["requests"])]
        cols += [(f"update1/{n}", r["update_1"]["requests"])]
    cols.append(("baseline40", res["push_vs_baseline"]["baseline"]["requests"]))
    for k, v in res["push_vs_baseline"].items():
        if k.startswith("push") and isinstance(v, dict):
            cols.append((f"push40/{k[5:] or 'default'}", v["requests"]))
    for r in res["scale"]["runs"]:
        cols.append((f"push/{r['documents']}", r["requests"]))
    keys = [k for k in (*C.ORDER, "total") if any(k in b for _, b in cols)]
    rows = [["endpoint", *[c for c, _ in cols]]]
    rows += [[k, *[str(b.get(k, 0)) for _, b in cols]] for k in keys]
    return grid(rows)


def report(res: dict[str, Any]) -> str:
    st = res["startup"]
    head = ["scenario", "wall", "requests", "429s", "vs baseline", "target", "met"]
    lines = [
        f"one request on loopback: {res['request_seconds_measured'] * 1000:.1f} ms (injected "
        f"20 ms); kb-sync start-up (--help) {fmt_s(st['seconds'])}, "
        f"{st['max_rss_bytes'] / MIB:.1f} MiB",
        grid([head, *push_rows(res["push_vs_baseline"]), *request_rows(res)]),
        "",
        grid(scale_rows(res["scale"])),
    ]
    base_rss = st["max_rss_bytes"]
    above = " / ".join(
        f"{(r['max_rss_bytes'] - base_rss) / 1024 / r['documents']:.1f}"
        for r in res["scale"]["runs"]
    )
    for label, key, unit, div in (
        ("wall", "time_fit", "ms", 1e-3),
        ("kb-sync cpu", "cpu_fit", "ms", 1e-3),
        ("peak RSS", "memory_fit", "KiB", 1024),
    ):
        f = res["scale"][key]
        icpt = f["intercept"]
        fixed = f"{icpt / MIB:.1f} MiB" if unit == "KiB" else f"{icpt:.2f} s"
        per = " / ".join(f"{m / div:.2f}" for m in f["per_doc"])
        lines.append(
            f"scale, {label}: {unit} a doc = {per} (x{f['per_doc_growth']} from 500 to the "
            f"largest); fit {f['slope_per_doc'] / div:.2f} {unit} a doc + "
            f"{fixed}, R2 {f['r2']}: {'linear' if f['linear'] else 'NOT linear'}"
        )
    lines.append(f"scale, peak RSS above the start-up's, KiB a doc: {above}")
    lines += ["", *limited_lines(res["limited"]), ""]
    lines += ["requests by endpoint (from the emulator's call log):", breakdown(res), ""]
    verdicts = ", ".join(
        f"{k}={'-' if v is None else 'met' if v else 'MISSED'}" for k, v in res["targets"].items()
    )
    lines.append(f"targets: {verdicts}")
    return "\n".join(lines)
