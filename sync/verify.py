"""`kb-sync verify --dir DIR`: a live audit of the agent against the folder.

Checks: no duplicate entries; one managed entry per local file, holding its current content
(read back, strict); every managed ``auto`` entry indexed ``succeeded`` for the agent's model;
unmanaged entries listed; quota use; and a RAG probe per document: the agent's retrieval
(``rag-query``) with a line of the document must return that document's current text.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any, TextIO

from .client import Client
from .config import Settings
from .errors import ApiError, ExitCode, NotFound
from .local import read_folder
from .naming import parse
from .plan import same_content
from .remote import agent_prompt, read_agent
from .status import index_status

_WORD = re.compile(r"\w+", re.UNICODE)


def probe_query(text: str) -> str:
    """The document's most distinctive line: the longest line of real words."""
    lines = [re.sub(r"[#*_>`|]", " ", ln).strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if len(_WORD.findall(ln)) >= 3] or [text[:200]]
    return " ".join(max(lines, key=len).split())[:300]


def audit(client: Client, settings: Settings, folder: str) -> dict[str, Any]:
    local = read_folder(folder)
    agent = read_agent(client, settings)
    prompt = agent_prompt(agent)
    rag = prompt.get("rag") or {}
    model = str(rag.get("embedding_model") or settings.embedding_model)
    kb = list(prompt.get("knowledge_base") or [])
    checks: list[dict[str, Any]] = []

    def check(name: str, ok: bool, detail: str = "", **extra: Any) -> None:
        checks.append({"check": name, "ok": ok, "detail": detail, **extra})

    ids = Counter(str(e.get("id")) for e in kb)
    dup_ids = [i for i, n in ids.items() if n > 1]
    managed: dict[str, list[dict[str, Any]]] = {}
    unmanaged = []
    for e in kb:
        m = parse(str(e.get("name", "")), settings.namespace)
        if m:
            managed.setdefault(m.file, []).append(e)
        else:
            unmanaged.append({"id": e.get("id"), "name": e.get("name")})
    dup_files = [f for f, es in managed.items() if len(es) > 1]
    check(
        "no duplicate entries",
        not dup_ids and not dup_files,
        ", ".join(dup_ids + dup_files) or f"{len(kb)} entries, all distinct",
    )
    local_files = {d.file for d in local}
    extra_files = sorted(set(managed) - local_files)
    check("no managed entry without a local file", not extra_files, ", ".join(extra_files))
    for d in local:
        entries = managed.get(d.file, [])
        if not entries:
            check(f"{d.file}: attached", False, "no managed entry for this file")
            continue
        e = entries[0]
        doc_id = str(e.get("id"))
        m = parse(str(e.get("name")), settings.namespace)
        try:
            content = client.get_content(doc_id)
            fmt = None
            if not same_content(d.text, content, None):
                fmt = str(client.get_document(doc_id).get("content_format", "html"))
            same = same_content(d.text, content, fmt)
        except NotFound:
            check(f"{d.file}: attached", False, f"entry {doc_id} points at a missing document")
            continue
        check(
            f"{d.file}: content equals the folder",
            same and m is not None and m.fingerprint == d.fingerprint,
            f"id {doc_id}",
            id=doc_id,
        )
        mode = e.get("usage_mode", "auto")
        if mode == "auto":
            status = index_status(client, doc_id, model)
            check(f"{d.file}: indexed", status == "succeeded", f"{model}: {status}", id=doc_id)
            try:
                res = client.rag_query(settings.agent_id, probe_query(d.text))
                chunks = res.get("chunks") or []
                hit = [c for c in chunks if c.get("document_id") == doc_id]
                ok = bool(hit) and all(
                    " ".join(str(c.get("content", "")).split()) in " ".join(d.text.split())
                    for c in hit
                )
                check(
                    f"{d.file}: RAG returns the current text",
                    ok,
                    f"{len(hit)} of {len(chunks)} chunks from this document",
                    id=doc_id,
                )
            except ApiError as exc:
                check(
                    f"{d.file}: RAG returns the current text",
                    False,
                    f"rag-query failed: {exc}",
                    id=doc_id,
                )
        else:
            check(f"{d.file}: indexed", True, "usage_mode prompt: no index needed", id=doc_id)
    try:
        ov = client.rag_overview()
        quota = {
            "total_used_bytes": ov.get("total_used_bytes"),
            "total_max_bytes": ov.get("total_max_bytes"),
        }
    except ApiError:
        quota = {}
    failed = [c for c in checks if not c["ok"]]
    return {
        "ok": not failed,
        "agent": settings.agent_id,
        "checks": failed + [c for c in checks if c["ok"]],
        "unmanaged": unmanaged,
        "quota": quota,
        "entries": len(kb),
    }


def verify_command(
    client: Client, settings: Settings, folder: str, out: TextIO, as_json: bool
) -> int:
    report = audit(client, settings, folder)
    if as_json:
        out.write(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    else:
        for c in report["checks"]:
            out.write(f"{'PASS' if c['ok'] else 'FAIL'}  {c['check']}  {c['detail']}\n")
        for u in report["unmanaged"]:
            out.write(f"info  unmanaged entry kept: {u['name']} [{u['id']}]\n")
        q = report["quota"]
        out.write(f"info  quota: {q.get('total_used_bytes')} of {q.get('total_max_bytes')} bytes\n")
        n_fail = sum(1 for c in report["checks"] if not c["ok"])
        out.write(f"Verify: {'OK' if report['ok'] else f'{n_fail} check(s) failed'}\n")
    return ExitCode.OK if report["ok"] else ExitCode.VERIFY_FAILED
