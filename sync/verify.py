"""`kb-sync verify --dir DIR`: a live audit of the agent against the folder.

Checks: no duplicate entries; one managed entry per local file, holding its current content
(read back, strict); every managed ``auto`` entry indexed ``succeeded`` for the agent's model;
unmanaged entries listed; quota use; and a RAG probe per document: the agent's retrieval
(``rag-query``) with a line of the document must return that document's current text.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from collections.abc import Callable
from typing import Any, TextIO

from .client import Client
from .config import Settings
from .content import same_content
from .domain import KbEntry
from .errors import ApiError, ExitCode, NotFound
from .history_command import where, where_lines
from .local import LocalDoc, read_folder
from .naming import legacy_keys
from .remote import ownership, read_agent
from .status import index_status

_WORD = re.compile(r"\w+", re.UNICODE)


def probe_query(text: str) -> str:
    """The document's most distinctive line: the longest line of real words."""
    lines = [re.sub(r"[#*_>`|]", " ", ln).strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if len(_WORD.findall(ln)) >= 3] or [text[:200]]
    return " ".join(max(lines, key=len).split())[:300]


def _normalised(text: str) -> str:
    return " ".join(text.split())


def _chunk_text(chunk: dict[str, Any]) -> str:
    """A rag-query chunk's words: ``text`` [spec], HTML chunks without their tags."""
    text = str(chunk.get("text") or "")
    if chunk.get("content_format") == "html":
        text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    return text


class _Audit:
    def __init__(self, client: Client, settings: Settings, model: str) -> None:
        self.client, self.settings, self.model = client, settings, model
        self.checks: list[dict[str, Any]] = []

    def check(self, name: str, ok: bool, detail: str = "", **extra: Any) -> None:
        self.checks.append({"check": name, "ok": ok, "detail": detail, **extra})

    def document(self, d: LocalDoc, e: KbEntry) -> None:
        """One local file's entry: content read back, index, and the RAG probe."""
        m = ownership(self.settings).managed(e.name)
        try:
            content = self.client.get_content(e.id)
            fmt = None
            if not same_content(d.text, content, None):
                fmt = str(self.client.get_document(e.id).get("content_format", "html"))
            same = same_content(d.text, content, fmt)
        except NotFound:
            self.check(f"{d.file}: attached", False, f"entry {e.id} points at a missing document")
            return
        self.check(
            f"{d.file}: content equals the folder",
            same and m is not None and m.fingerprint == d.fingerprint,
            f"id {e.id}",
            id=e.id,
        )
        if e.usage_mode != "auto":
            self.check(f"{d.file}: indexed", True, "usage_mode prompt: no index needed", id=e.id)
            return
        status = index_status(self.client, e.id, self.model)
        self.check(f"{d.file}: indexed", status == "succeeded", f"{self.model}: {status}", id=e.id)
        self.rag_probe(d, e)

    def rag_probe(self, d: LocalDoc, e: KbEntry) -> None:
        """The agent's retrieval for a line of the file must return chunks of this document,
        each one's ``text`` found in the current file (whitespace-normalised): a chunk that is
        not (an index built on an old version) fails, and so does no chunk at all."""
        name = f"{d.file}: RAG returns the current text"
        try:
            res = self.client.rag_query(self.settings.agent_id, probe_query(d.text))
        except ApiError as exc:
            self.check(name, False, f"rag-query failed: {exc}", id=e.id)
            return
        chunks = [c for c in res.get("chunks") or [] if isinstance(c, dict)]
        hit = [c for c in chunks if c.get("document_id") == e.id]
        current = _normalised(d.text)
        stale = [c for c in hit if _normalised(_chunk_text(c)) not in current]
        if not hit:
            detail = f"no chunk of {d.file} (id {e.id}) among the {len(chunks)} returned"
        elif stale:
            words = " ".join(_chunk_text(stale[0]).split())[:80]
            detail = (
                f"{len(stale)} of {len(hit)} chunks of {d.file} (id {e.id}) are not in the "
                f"current file, e.g. {words!r}"
            )
        else:
            detail = f"{len(hit)} of {len(chunks)} chunks from this document"
        self.check(name, bool(hit) and not stale, detail, id=e.id)

    def quota(self) -> dict[str, Any]:
        try:
            ov = self.client.rag_overview()
        except ApiError:
            return {}
        return {
            "total_used_bytes": ov.get("total_used_bytes"),
            "total_max_bytes": ov.get("total_max_bytes"),
        }


def audit(client: Client, settings: Settings, folder: str) -> dict[str, Any]:
    local = read_folder(folder)
    local.log_skipped(folder)
    agent = read_agent(client, settings)
    kb = agent.entries
    run = _Audit(client, settings, agent.embedding_model or settings.embedding_model)
    ids = Counter(e.id for e in kb)
    dup_ids = [i for i, n in ids.items() if n > 1]
    managed: dict[str, list[KbEntry]] = {}
    unmanaged = []
    for e in kb:
        m = ownership(settings).managed(e.name)
        if m:
            managed.setdefault(m.file, []).append(e)
        else:
            unmanaged.append({"id": e.id, "name": e.raw.get("name")})
    dup_files = [f for f, es in managed.items() if len(es) > 1]
    # the old script's copy of a file (its name or stem) next to kb-sync's: a duplicate too
    legacy = [
        f"{u['name']} (the old script's copy of {f}; kb-sync push --adopt-legacy replaces it)"
        for u in unmanaged
        for f in managed
        if str(u["name"]) in legacy_keys(f)
    ]
    run.check(
        "no duplicate entries",
        not dup_ids and not dup_files and not legacy,
        ", ".join(dup_ids + dup_files + legacy) or f"{len(kb)} entries, all distinct",
    )
    extra_files = sorted(set(managed) - {d.file for d in local})
    run.check("no managed entry without a local file", not extra_files, ", ".join(extra_files))
    for d in local:
        entries = managed.get(d.file, [])
        if not entries:
            run.check(f"{d.file}: attached", False, "no managed entry for this file")
        else:
            run.document(d, entries[0])
    failed = [c for c in run.checks if not c["ok"]]
    return {
        "ok": not failed,
        "agent": settings.agent_id,
        "checks": failed + [c for c in run.checks if c["ok"]],
        "unmanaged": unmanaged,
        "quota": run.quota(),
        "entries": len(kb),
        **_where(client, settings, {e.id for e in kb}),
    }


def _where(client: Client, settings: Settings, attached: set[str]) -> dict[str, Any]:
    """The folder, the stored history and the managed documents this agent does not use,
    reported (not checked: another agent may use them; the next push removes ours)."""
    try:
        place = where(client, settings)
    except ApiError as exc:
        return {"folder": {"name": settings.folder, "error": str(exc)}, "history": None}
    loose = [{"id": d.id, "name": d.name} for d in place.docs if d.id not in attached]
    return place.to_dict() | {"unattached_managed": loose}


def verify_command(
    client: Client,
    settings: Settings,
    folder: str,
    out: TextIO,
    as_json: bool,
    extra: Callable[[dict[str, Any]], list[str]] | None = None,
) -> int:
    """``extra``: more checks on the report (``--questions``, :mod:`sync.ask_command`); it
    adds to the report and returns its text lines."""
    report = audit(client, settings, folder)
    lines = extra(report) if extra is not None else []
    if as_json:
        out.write(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    else:
        for c in report["checks"]:
            out.write(f"{'PASS' if c['ok'] else 'FAIL'}  {c['check']}  {c['detail']}\n")
        for u in report["unmanaged"]:
            out.write(f"info  unmanaged entry kept: {u['name']} [{u['id']}]\n")
        out.writelines(line + "\n" for line in lines)
        out.writelines(f"info  {line}\n" for line in where_lines(report))
        for d in report.get("unattached_managed") or []:
            out.write(
                f"info  managed document attached to no entry of this agent: {d['name']} "
                f"[{d['id']}] (a stopped run's, or another agent's; the next push removes ours)\n"
            )
        q = report["quota"]
        out.write(f"info  quota: {q.get('total_used_bytes')} of {q.get('total_max_bytes')} bytes\n")
        n_fail = sum(1 for c in report["checks"] if not c["ok"])
        out.write(f"Verify: {'OK' if report['ok'] else f'{n_fail} check(s) failed'}\n")
    return ExitCode.OK if report["ok"] else ExitCode.VERIFY_FAILED
