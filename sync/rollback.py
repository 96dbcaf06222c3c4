"""`kb-sync rollback`: bring back the agent's knowledge base from before a push.

Documents the push deleted are recreated from the content its record saved, indexed, and
put back in their places; then one PATCH; then what the push created is deleted (with the same
care as any delete). It is planned first and has a dry run.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO

from .apply import Applier, DocResult, Options
from .client import Client
from .clock import Clock
from .config import Settings
from .errors import ConfigError, ExitCode, NotFound, SyncError
from .log import event
from .naming import parse
from .plan import Item, Ref
from .record import RunRecord, latest, load
from .remote import agent_kb, read_agent


def rollback_command(
    settings: Settings,
    client: Client,
    clock: Clock,
    out: TextIO,
    *,
    record_path: str | None = None,
    dry_run: bool = False,
    as_json: bool = False,
    options: Options | None = None,
) -> int:
    path = (
        Path(record_path) if record_path else latest(settings.agent_id, Path(settings.record_dir))
    )
    rec = load(path)
    if rec["agent_id"] != settings.agent_id:
        raise ConfigError(
            f"{path}: is a record for agent {rec['agent_id']}, not ELEVENLABS_AGENT_ID="
            f"{settings.agent_id}; pass the right --record or agent id"
        )
    before: list[dict[str, Any]] = rec["kb_before"]
    saved: dict[str, dict[str, Any]] = rec.get("saved") or {}
    current = agent_kb(read_agent(client, settings))
    before_ids = {str(e.get("id")) for e in before}
    current_ids = {str(e.get("id")) for e in current}
    adopted = {
        str(r["id"])
        for i in (rec.get("plan") or {}).get("items", [])
        if i.get("action") == "adopt"
        for r in i.get("replaces", [])
    }

    def owned(e: dict[str, Any]) -> bool:  # what the push could have changed
        return bool(parse(str(e.get("name", "")), settings.namespace)) or str(e["id"]) in adopted

    keep: list[dict[str, Any]] = []
    recreate: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    for e in before:
        if not owned(e):
            continue  # unmanaged entries stay as they are now (a person may have moved them)
        try:
            client.get_document(str(e["id"]))
            keep.append(e)
        except NotFound:
            (recreate if str(e["id"]) in saved else missing).append(e)
    if missing:
        names = ", ".join(str(e.get("name")) for e in missing)
        raise SyncError(
            f"{path}: cannot restore {names}: deleted and not saved in the record; nothing "
            "was changed"
        )
    extra = [e for e in current if str(e.get("id")) not in before_ids and not owned(e)]
    removed_since = [e for e in before if not owned(e) and str(e["id"]) not in current_ids]
    created_names = {str(c["id"]): str(c.get("name")) for c in rec.get("created") or []}
    created_ids = list(created_names)
    steps = {
        "record": str(path),
        "restore": [{"id": e["id"], "name": e.get("name")} for e in before],
        "recreate": [{"id": e["id"], "name": e.get("name")} for e in recreate],
        "keep_unmanaged_added_since": [{"id": e["id"], "name": e.get("name")} for e in extra],
        "unmanaged_removed_since_stay_removed": [
            {"id": e["id"], "name": e.get("name")} for e in removed_since
        ],
        "delete_created": created_ids,
    }
    summary = (
        f"Rollback: restore {len(before)} entries ({len(recreate)} to recreate), "
        f"delete {len(created_ids)} created by run {rec.get('run_id')}"
    )
    if as_json:
        out.write(
            json.dumps(
                {"rollback": steps, "summary": summary, "dry_run": dry_run},
                ensure_ascii=False,
                indent=2,
            )
            + "\n"
        )
    else:
        out.write(summary + "\n")
        for e in recreate:
            out.write(f"  + recreate {e.get('name')} (was {e['id']})\n")
        for i in created_ids:
            out.write(f"  - delete {i}\n")
    out.flush()
    event(
        "rollback.plan",
        record=str(path),
        restore=len(before),
        recreate=len(recreate),
        delete=len(created_ids),
        dry_run=dry_run,
    )
    if dry_run:
        return ExitCode.OK

    opts = options or Options()
    record = RunRecord(
        directory=settings.record_dir,
        kind="rollback",
        agent_id=settings.agent_id,
        namespace=settings.namespace,
        base_url=settings.base_url,
        kb_before=current,
        options={"record": str(path)},
    )
    applier = Applier(
        client, clock, settings.agent_id, settings.namespace, settings.embedding_model, opts, record
    )
    new_id: dict[str, str] = {}
    results: list[DocResult] = []
    for e in recreate:
        text = str(saved[str(e["id"])]["text"])
        size = len(text.encode("utf-8"))
        earlier = [  # an earlier rollback of the same record already recreated it: reuse
            d
            for d in client.find_by_name(str(e.get("name")))
            if (d.get("metadata") or {}).get("size_bytes") == size
        ]
        if earlier:
            created = {"id": str(earlier[0]["id"])}
            event("rollback.reused", name=e.get("name"), old_id=e["id"], id=created["id"])
        else:
            created = client.create_text(str(e.get("name")), text)
            record.created.append({"id": created["id"], "name": e.get("name")})
            event("rollback.recreated", name=e.get("name"), old_id=e["id"], id=created["id"])
        new_id[str(e["id"])] = str(created["id"])
        mode = str(e.get("usage_mode", "auto"))
        item = Item("create", str(e.get("name")), str(e.get("name")), usage_mode=mode)
        r = DocResult(item=item, doc_id=str(created["id"]), uploaded=True, usage_mode=mode)
        if mode == "auto":
            applier._compute(r)
            results.append(r)
        else:
            r.status = "not_needed"
    if results:
        with ThreadPoolExecutor(max_workers=opts.concurrency) as pool:
            applier._wait(results, pool)
        bad = [r for r in results if not r.ready]
        if bad:
            for r in bad:
                applier.delete_safely(Ref(str(r.doc_id), str(r.item.name), "rollback aborted"))
            raise SyncError(
                "rollback: recreated documents did not index ("
                + ", ".join(f"{r.item.name}: {r.status}" for r in bad)
                + "); the agent was not changed"
            )
    current_by_id = {str(e.get("id")): e for e in current}
    desired = [
        dict(e, id=new_id.get(str(e["id"]), e["id"])) if owned(e) else current_by_id[str(e["id"])]
        for e in before
        if owned(e) or str(e["id"]) in current_by_id
    ] + extra
    after = agent_kb(applier.patch(desired))
    record.kb_after = after
    record.patched = True
    event(
        "agent.patched",
        agent=settings.agent_id,
        count_before=len(current),
        count_after=len(after),
        reason="rollback",
    )
    keep_ids = {str(e.get("id")) for e in after}
    record.deletions = [
        applier.delete_safely(Ref(i, created_names[i], f"created by run {rec.get('run_id')}"))
        for i in created_ids
        if i not in keep_ids
    ]
    record.status = "done"
    record.exit_code = 0
    record.write()
    partial = any(d["outcome"] in ("kept", "failed") for d in record.deletions)
    event("rollback.done", record=record.path, count_after=len(after), partial=partial)
    if not as_json:
        out.write(f"Rolled back: knowledge base {len(current)} -> {len(after)} entries.\n")
    return ExitCode.PARTIAL if partial else ExitCode.OK
