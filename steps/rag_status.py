"""6.1: every RAG index status, driven by the emulator's index behaviours and quota."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_bdd import given, parsers, then

from steps.target import Faults
from steps.world import World
from sync.testing import is_upload

if TYPE_CHECKING:
    from sync.emulator import Backend, Call

BEHAVIOURS = {
    "succeeds": ("succeed", None),
    "stays processing": ("stuck", None),
    "fails once": ("failed", 1),
    "always fails": ("failed", None),
}


@given(
    parsers.re(
        r'the RAG index of "(?P<file>[^"]+)" '
        r"(?P<behaviour>succeeds|stays processing|fails once|always fails)$"
    )
)
def index_behaviour(world: World, faults: Faults, file: str, behaviour: str) -> None:
    kind, times = BEHAVIOURS[behaviour]
    faults.set_index_behaviour(f"{world.target.namespace}:{file}#", kind, times)
    world.evidence.fact("injected", f"RAG index of new {file} versions: {behaviour}")


@given(parsers.re(r"the workspace RAG quota runs out (?P<when>before the upload|during indexing)$"))
def quota_runs_out(world: World, faults: Faults, when: str) -> None:
    if when == "before the upload":
        faults.set_quota(faults.used_bytes() + 100)
    else:

        def squeeze(backend: Backend, call: Call) -> None:
            if is_upload(call):
                backend.set_quota(backend.used_bytes() + 10)

        faults.after_request.append(squeeze)
    world.evidence.fact("injected", f"RAG quota runs out {when}")


@then(parsers.re(r'the index result of "(?P<file>[^"]+)" is logged as "(?P<status>[^"]+)"$'))
def index_result(world: World, file: str, status: str) -> None:
    results = [e for e in world.last.event("index.result") if e.get("file") == file]
    got = [str(e.get("status")) for e in results]
    world.evidence.check(
        f"index.result {file} = {status}",
        got == [status],
        f"logged {got}; "
        + ", ".join(
            f"{k}={v}"
            for k, v in (results[-1] if results else {}).items()
            if k in ("seconds", "error", "usage_mode")
        ),
    )


@then(parsers.re(r'"(?P<file>[^"]+)" on the agent is the (?P<which>new|old) version$'))
def agent_version(world: World, file: str, which: str) -> None:
    entries = world.managed_entries().get(file, [])
    if which == "new":
        ok = len(entries) == 1 and entries[0]["name"] == world.name_for(file)
    else:
        ok = len(entries) == 1 and str(entries[0]["id"]) == world.synced[file]
    world.evidence.check(
        f"{file} on the agent: {which} version",
        ok,
        ", ".join(f"{e['name']} [{e['id']}]" for e in entries) or "not attached",
    )


@then("the agent's knowledge base has no entry that is not indexed")
def all_indexed(world: World) -> None:
    bad = []
    for e in world.kb():
        if e.get("usage_mode", "auto") != "auto":
            continue
        st = world.target.index_status(str(e["id"]))
        if st != "succeeded":
            bad.append(f"{e['name']}: {st}")
    world.evidence.check(
        "every auto entry of the agent is indexed succeeded",
        not bad,
        "; ".join(bad) or f"{len(world.kb())} entries checked",
        dod="Every managed document indexed succeeded",
    )


@then(parsers.re(r'the log reports the RAG quota with "(?P<event>[^"]+)"$'))
def quota_reported(world: World, event: str) -> None:
    evs = world.last.event(event)
    ok = bool(evs) and all(k in evs[-1] for k in ("used", "max"))
    world.evidence.check(
        f"{event} logged with used/max",
        ok,
        ", ".join(f"{k}={v}" for k, v in (evs[-1] if evs else {}).items() if k not in ("level",)),
    )
    if event == "quota.preflight":
        world.evidence.check(
            "error names the quota",
            any("RAG quota" in ln for ln in world.last.error_lines),
            " | ".join(world.last.error_lines),
        )


@then("no document of this run is left behind")
def nothing_left(world: World) -> None:
    kb_ids = {str(e["id"]) for e in world.kb()}
    stray = [
        f"{d['name']} [{d['id']}]"
        for d in world.target.docs_named(world.target.namespace + ":")
        if str(d["id"]) not in kb_ids
    ]
    world.evidence.check("no managed document left unattached", not stray, ", ".join(stray))


@then(parsers.re(r'the log warns that "(?P<file>[^"]+)" is under 500 bytes$'))
def small_warned(world: World, file: str) -> None:
    res = world.last
    warned = any(e.get("file") == file for e in res.event("doc.small"))
    in_error = any(file in ln and "under 500 bytes" in ln for ln in res.error_lines)
    world.evidence.check(
        f"{file} reported as under 500 bytes",
        warned or in_error,
        "doc.small warning" if warned else " | ".join(res.error_lines),
    )


@then(
    parsers.re(
        r'"(?P<file>[^"]+)" is '
        r"(?P<outcome>attached with usage_mode prompt|not attached|refused before any write)$"
    )
)
def small_outcome(world: World, file: str, outcome: str) -> None:
    entries = world.managed_entries().get(file, [])
    if outcome == "attached with usage_mode prompt":
        ok = len(entries) == 1 and entries[0].get("usage_mode") == "prompt"
    elif outcome == "not attached":
        ok = not entries
    else:
        ok = not entries and not world.last.writes
    world.evidence.check(
        f"{file}: {outcome}",
        ok,
        ", ".join(f"{e['name']} usage_mode={e.get('usage_mode')}" for e in entries)
        or f"no entry; {len(world.last.writes)} writes",
    )
