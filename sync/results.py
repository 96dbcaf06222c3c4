"""What happened to each document of a run: uploaded, its index status, attached or not."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .domain import KbEntry
from .errors import ExitCode
from .plan import Item

# the RAG index lifecycle: new -> created -> processing -> succeeded | failed |
# rag_limit_exceeded | document_too_small | cannot_index_folder (API-NOTES: lowercase)
PENDING = ("new", "created", "processing")
FINAL = ("succeeded", "failed", "rag_limit_exceeded", "document_too_small", "cannot_index_folder")
# what kb-sync itself says of a document that has no index status from the server
LOCAL = ("not_needed", "upload_failed", "error", "not_uploaded")


def is_pending(status: str) -> bool:
    """Not final yet: a pending status, or one the server never documented (polled until the
    deadline rather than taken as a failure)."""
    return status not in FINAL and status not in LOCAL


@dataclass
class DocResult:
    item: Item
    doc_id: str | None = None
    uploaded: bool = False
    status: str = "new"  # index status (pending until told), or not_needed / upload_failed
    usage_mode: str = "auto"
    seconds: float = 0.0
    recomputes: int = 0
    error: str | None = None
    attached: bool = False

    @property
    def ready(self) -> bool:
        return self.doc_id is not None and self.status in ("succeeded", "not_needed")

    @property
    def pending(self) -> bool:
        return self.doc_id is not None and is_pending(self.status)

    def locator(self) -> KbEntry:
        assert self.doc_id is not None
        return KbEntry.locator(self.doc_id, str(self.item.name), self.usage_mode)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.item.file,
            "action": self.item.action,
            "name": self.item.name,
            "id": self.doc_id,
            "uploaded": self.uploaded,
            "index_status": self.status,
            "usage_mode": self.usage_mode,
            "index_seconds": round(self.seconds, 3),
            "recomputes": self.recomputes,
            "attached": self.attached,
            "error": self.error,
            "replaces": [r.id for r in self.item.replaces],
        }


@dataclass
class Outcome:
    exit_code: ExitCode
    results: list[DocResult] = field(default_factory=list)
    deletions: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""


_WHY = {
    "failed": "its new version's RAG index failed (recomputed, still failed)",
    "rag_limit_exceeded": "the workspace's RAG quota is full (rag_limit_exceeded)",
    "document_too_small": "too small to index (document_too_small)",
    "upload_failed": "its upload failed",
}
_DELETED = {  # a delete's reason -> what it was, for people
    "old version": "old version",
    "duplicate": "duplicate",
    "file removed": "removed file",
    "legacy upload": "old script upload",
    "orphan: attached nowhere": "orphan",
}


def why_kept(r: DocResult) -> str:
    if is_pending(r.status):
        return f"its new version was still {r.status} at the deadline (--index-wait)"
    why = _WHY.get(r.status, f"its new version ended {r.status}")
    return why + (f": {r.error}" if r.error else "")


def outcome_lines(outcome: Outcome) -> list[str]:
    """The lines under a push's "Applied:" line: each file that kept its old version and why;
    the deletes by what they were, and what was kept in use."""
    lines = [
        f"  not added: {r.item.file}: {why_kept(r)}"
        if r.item.action == "create"  # a new file has no old version to keep
        else f"  kept the old version of {r.item.file}: {why_kept(r)}"
        for r in outcome.results
        if not r.attached
    ]
    done = Counter(
        "unattached upload"
        if d["reason"].startswith(("not attached", "still "))
        else _DELETED.get(d["reason"], d["reason"])
        for d in outcome.deletions
        if d["outcome"] in ("deleted", "force-deleted")
    )
    if done:
        lines.append("  deleted: " + ", ".join(_count(n, what) for what, n in done.items()))
    lines += [
        f"  not deleted: {d['name']} [{d['id']}] "
        f"({d.get('kept_because') or d.get('error') or d['outcome']})"
        for d in outcome.deletions
        if d["outcome"] in ("kept", "failed")
    ]
    return lines


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"
