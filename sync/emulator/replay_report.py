"""A replay's result for people: the fidelity table grouped by operation (the worst first), the
differences, the spec's notes, what to do, and one summary line (the last line)."""

from __future__ import annotations

import json
from typing import Any

from sync.emulator.replay_compare import ASPECTS, Fidelity

MAX_LISTED = 50  # differences listed one by one in the text output
ADVICE = (
    "What to do: a difference is the emulator disagreeing with the recorded server. Check the "
    "recorded side is the real API's behaviour (not the weather: a one-off slow call); then "
    "change the emulator (its handler in sync/emulator/responses.py, the model in models.py, "
    "the index lifecycle in indexes.py) and mark the guess it replaces in docs/emulator.md; "
    "a cassette recorded on staging and committed under tests/contract/cassettes/ then keeps "
    "it so on every make test."
)


def operation_rows(fid: Fidelity) -> list[dict[str, Any]]:
    """Per operation: exchanges, how many agree, differences per aspect; the worst first."""
    by_seq: dict[int, list[str]] = {}
    for d in fid.differences:
        by_seq.setdefault(d.seq, []).append(d.aspect)
    rows = []
    for op, xs in fid.ops.items():
        counts = dict.fromkeys(ASPECTS, 0)
        for x in xs:
            for aspect in by_seq.get(x.seq, []):
                counts[aspect] += 1
        agree = sum(1 for x in xs if x.seq not in by_seq)
        rows.append({"operation": op, "exchanges": len(xs), "agree": agree, **counts})
    rows.sort(key=_badness)
    return rows


def _badness(row: dict[str, Any]) -> tuple[float, int, str]:
    """The worst first: the lowest share agreeing, then the most differing, then by name."""
    n, agree = int(row["exchanges"]), int(row["agree"])
    return agree / n, agree - n, str(row["operation"])


def summary(fid: Fidelity) -> str:
    pct = 100.0 * fid.agree / fid.exchanges if fid.exchanges else 100.0
    per = {a: 0 for a in ASPECTS}
    for d in fid.differences:
        per[d.aspect] += 1
    detail = ", ".join(f"{a} {n}" for a, n in per.items() if n)
    return (
        f"fidelity: {fid.agree} of {fid.exchanges} exchanges agree ({pct:.1f}%); "
        f"{len(fid.differences)} difference{'s' * (len(fid.differences) != 1)}"
        + (f" ({detail})" if detail else "")
    )


def _value(v: Any, limit: int = 160) -> str:
    text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def notes(fid: Fidelity) -> list[str]:
    out = [
        f"cassette: {fid.path} ({fid.exchanges} exchanges, {fid.segments} segment"
        f"{'s' * (fid.segments != 1)})",
        *(f"label: {label}" for label in fid.labels),
        f"index time fitted to the cassette: {fid.index_seconds:g} s",
    ]
    if fid.transient or fid.dropped:
        out.append(
            f"not measured: {fid.transient} 429/5xx answers injected as recorded, "
            f"{fid.dropped} lost answers not sent again"
        )
    if fid.spec is None:
        out.append(
            "spec: not checked (the vendored subset tests/contract/openapi-kb-subset.json is in "
            "the source tree only, not in an installed package)"
        )
    else:
        out.append(f"spec: required keys checked against {fid.spec}")
        out += [f"spec: {n}" for n in fid.spec_notes]
    return out


def render_text(fid: Fidelity) -> str:
    lines = notes(fid)
    rows = operation_rows(fid)
    width = max([len("operation"), *(len(r["operation"]) for r in rows)])
    head = f"{'operation':<{width}}  exchanges  agree  " + "  ".join(ASPECTS)
    lines += ["", head]
    for r in rows:
        cells = "  ".join(f"{r[a]:>{len(a)}}" for a in ASPECTS)
        lines.append(f"{r['operation']:<{width}}  {r['exchanges']:>9}  {r['agree']:>5}  {cells}")
    if fid.differences:
        lines += ["", "differences:"]
        for d in fid.differences[:MAX_LISTED]:
            lines.append(
                f"  #{d.seq} {d.method} {d.path} {d.aspect}: recorded {_value(d.recorded)}, "
                f"emulator {_value(d.emulator)}"
            )
        if len(fid.differences) > MAX_LISTED:
            lines.append(f"  ... and {len(fid.differences) - MAX_LISTED} more (--json lists all)")
        lines += ["", ADVICE]
    lines += ["", summary(fid)]
    return "\n".join(lines) + "\n"


def report_data(fid: Fidelity, limit: int = 100) -> dict[str, Any]:
    """The validation report's "Emulator fidelity" section (``sync/report.py``)."""
    pct = 100.0 * fid.agree / fid.exchanges if fid.exchanges else 100.0
    return {
        "cassette": fid.path,
        "error": None,
        "exchanges": fid.exchanges,
        "agree": fid.agree,
        "ratio": f"{pct:.1f}%",
        "summary": summary(fid),
        "notes": notes(fid),
        "aspects": list(ASPECTS),
        "operations": operation_rows(fid),
        "differences": [
            {
                **d.to_dict(),
                "recorded": _value(d.recorded, 300),
                "emulator": _value(d.emulator, 300),
            }
            for d in fid.differences[:limit]
        ],
        "more": max(0, len(fid.differences) - limit),
        "advice": ADVICE,
    }
