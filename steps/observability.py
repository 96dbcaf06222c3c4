"""8: the log of a run shows each required line; the run record holds before and after."""

from __future__ import annotations

import json

from pytest_bdd import parsers, then

from steps.world import World


@then("the log has these lines:")
def log_has_lines(world: World, datatable: list[list[str]]) -> None:
    res = world.last
    for row in datatable[1:]:
        name, spec = row[0].strip(), row[1].strip()
        events = res.event(name)
        wanted = [s.strip() for s in spec.split(",") if s.strip()]
        matching = []
        for e in events:
            ok = True
            for w in wanted:
                key, eq, val = w.partition("=")
                if eq and key.startswith("count") and val.isdigit():
                    val = str(int(val) + world.target.baseline)  # staging's own entries
                if key not in e or e[key] in ("", None, []) or eq and str(e[key]) != val:
                    ok = False
            if ok:
                matching.append(e)
        shown = {
            k: v
            for k, v in (matching or events or [{}])[0].items()
            if k not in ("entries", "ts", "logger")
        }
        world.evidence.check(
            f"log line {name} ({spec})", bool(matching), json.dumps(shown, default=str)[:300]
        )


@then(parsers.re(r'run.done names "(?P<file>[^"]+)" as updated$'))
def run_done_updated(world: World, file: str) -> None:
    done = world.last.event("run.done")
    updated = done[-1].get("updated") if done else None
    world.evidence.check(
        f"run.done updated={updated}", isinstance(updated, list) and file in updated, ""
    )


@then("the run record holds the knowledge base before and after")
def record_before_after(world: World) -> None:
    recs = [p for p in world.last.records if "-push-" in p.name]
    world.evidence.check("a run record was written", bool(recs), str(world.record_dir))
    data = json.loads(recs[-1].read_text("utf-8"))
    world.evidence.check(
        "record: kb_before, kb_after, plan, results, deletions",
        bool(data.get("kb_before"))
        and bool(data.get("kb_after"))
        and bool(data.get("plan"))
        and bool(data.get("results"))
        and "deletions" in data,
        f"kb_before {len(data.get('kb_before') or [])}, "
        f"kb_after {len(data.get('kb_after') or [])}, status {data.get('status')}",
    )
