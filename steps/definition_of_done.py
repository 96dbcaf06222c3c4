"""10: definition of done: no duplicates, unmanaged untouched, verify and its RAG probe."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from pytest_bdd import parsers, then

from steps.common import FILES, file_list
from steps.world import World


def _dod_for(check: str) -> str | None:
    if check == "no duplicate entries":
        return "No duplicate entries"
    if check.endswith(": indexed"):
        return "Every managed document indexed succeeded"
    if check.endswith("RAG returns the current text"):
        return "RAG search returns the current text of each updated document"
    return None


@then("the agent's knowledge base has no duplicate entries")
def no_duplicates(world: World) -> None:
    kb = world.kb()
    ids = [i for i, n in Counter(str(e["id"]) for e in kb).items() if n > 1]
    names = [i for i, n in Counter(str(e["name"]) for e in kb).items() if n > 1]
    files = [f for f, es in world.managed_entries(kb).items() if len(es) > 1]
    world.evidence.check(
        "no duplicate entries",
        not ids and not names and not files,
        f"{len(kb)} entries, ids/names/files distinct"
        if not (ids or names or files)
        else f"dup ids {ids} names {names} files {files}",
        dod="No duplicate entries",
    )


def _verify_report(world: World) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(world.last.stdout)
    return data


@then("verify passes every check")
def verify_passes(world: World) -> None:
    report = _verify_report(world)
    for c in report["checks"]:
        world.evidence.check(
            f"verify: {c['check']}",
            bool(c["ok"]),
            str(c.get("detail", "")),
            dod=_dod_for(str(c["check"])),
        )
    world.evidence.check("verify ok", bool(report["ok"]), f"{len(report['checks'])} checks")
    world.evidence.fact(
        "unmanaged entries listed by verify", [u.get("name") for u in report.get("unmanaged", [])]
    )
    world.evidence.fact("quota", report.get("quota"))


@then(parsers.re(r"verify's RAG probe returns the current text of " + FILES + "$"))
def rag_probe(world: World, files: str) -> None:
    from sync.verify import probe_query

    report = _verify_report(world)
    by_name = {c["check"]: c for c in report["checks"]}
    for f in file_list(files):
        c = by_name.get(f"{f}: RAG returns the current text")
        world.evidence.check(
            f"verify RAG probe: {f}",
            bool(c and c["ok"]),
            str(c.get("detail")) if c else "no such check",
            dod="RAG search returns the current text of each updated document",
        )
        # an independent probe through the emulator's retrieval, not the sync's code
        chunks = world.target.probe_rag(world.agent_id, probe_query(world.files[f]))
        if chunks is None:
            continue
        entry = world.managed_entries()[f][0]
        mine = [ch for ch in chunks if ch["document_id"] == entry["id"]]
        world.evidence.check(
            f"independent RAG probe: {f}",
            bool(mine) and all(ch["content"] in world.files[f] for ch in mine),
            f"{len(mine)} of {len(chunks)} chunks from {entry['name']}",
            dod="RAG search returns the current text of each updated document",
        )


@then(parsers.re(r'verify reports "(?P<check>[^"]+)" as failed$'))
def verify_reports_failed(world: World, check: str) -> None:
    line = f"FAIL  {check}"
    world.evidence.check(
        f"verify: {check} fails", line in world.last.stdout, world.last.stdout[-800:]
    )
