"""Did the agent's retrieval answer a question? Pure verdicts over ``rag-query`` chunks.

A question passes when every expected string (:func:`sync.questions.normalise`d) is in the
retrieved chunks, counting only the chunks of the current document of its ``file`` when it
names one. Otherwise the verdict says why, as one of :data:`REASONS`:

- ``not_retrieved``: no chunk of the document that should hold the facts came back (none at
  all, the file is not attached, or attached ``usage_mode: prompt``, which retrieval skips);
- ``stale_document``: the facts came back from an old version of the file's document (still
  attached, or an index built on an old version: its text is not in the current file);
- ``other_document``: the facts came back only from another document;
- ``fact_missing``: the right document was retrieved, but some expected string is not in it;
- ``not_in_folder``: the question names a file that is not in ``--dir``;
- ``query_failed``: ``rag-query`` itself answered an error.

No I/O here: :mod:`sync.ask_command` reads the agent, runs the queries and reports.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .questions import Question, normalise

REASONS = (
    "passed",
    "not_retrieved",
    "stale_document",
    "other_document",
    "fact_missing",
    "not_in_folder",
    "query_failed",
)
TOP = 3  # chunks named per question in the report
EXCERPT = 100  # characters of each


@dataclass(frozen=True)
class Docs:
    """What the verdicts need to know of the agent and the folder.

    ``current``: file -> id of its managed entry on the agent whose fingerprint is the local
    file's; ``file_of``: doc id -> file, for every managed entry on the agent (current or
    not); ``texts``: file -> the local text; ``prompt``: files attached ``usage_mode: prompt``.
    """

    current: Mapping[str, str] = field(default_factory=dict)
    file_of: Mapping[str, str] = field(default_factory=dict)
    texts: Mapping[str, str] = field(default_factory=dict)
    prompt: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Verdict:
    question: Question
    reason: str
    detail: str
    top: tuple[dict[str, Any], ...] = ()
    missing: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()  # documents the facts were found in

    @property
    def ok(self) -> bool:
        return self.reason == "passed"

    def to_json(self) -> dict[str, Any]:
        return {
            **self.question.to_json(),
            "ok": self.ok,
            "reason": self.reason,
            "detail": self.detail,
            "missing": list(self.missing),
            "evidence": list(self.evidence),
            "top_chunks": list(self.top),
        }


def chunk_words(chunk: Mapping[str, Any]) -> str:
    """A chunk's ``text`` [spec]; an HTML chunk without its tags."""
    text = str(chunk.get("text") or "")
    if chunk.get("content_format") == "html":
        text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    return text


def kind_of(chunk: Mapping[str, Any], docs: Docs, file: str | None) -> str:
    """``current`` (of ``file``, or of any file when None), ``stale`` or ``other``."""
    doc_id = str(chunk.get("document_id") or "")
    owner = docs.file_of.get(doc_id)
    if owner is None or (file is not None and owner != file):
        return "other"
    fresh = docs.current.get(owner) == doc_id and normalise(chunk_words(chunk)) in normalise(
        docs.texts.get(owner, "")
    )
    return "current" if fresh else "stale"


def found(expect: Iterable[str], chunks: Iterable[Mapping[str, Any]]) -> set[str]:
    """The expected strings that are in at least one of ``chunks``."""
    texts = [normalise(chunk_words(c)) for c in chunks]
    return {e for e in expect if any(normalise(e) in t for t in texts)}


def top_chunks(chunks: Sequence[Mapping[str, Any]], docs: Docs) -> tuple[dict[str, Any], ...]:
    out = []
    for c in chunks[:TOP]:
        doc_id = str(c.get("document_id") or "")
        out.append(
            {
                "document": docs.file_of.get(doc_id) or str(c.get("document_name") or doc_id),
                "document_id": doc_id,
                "distance": c.get("vector_distance"),
                "excerpt": " ".join(chunk_words(c).split())[:EXCERPT],
            }
        )
    return tuple(out)


def _names(chunks: Iterable[Mapping[str, Any]], docs: Docs) -> tuple[str, ...]:
    names: dict[str, None] = {}
    for c in chunks:
        doc_id = str(c.get("document_id") or "")
        names.setdefault(docs.file_of.get(doc_id) or str(c.get("document_name") or doc_id))
    return tuple(names)


def judge(q: Question, chunks: Sequence[Mapping[str, Any]], docs: Docs) -> Verdict:
    """The verdict on ``q`` given the chunks its ``rag-query`` returned."""
    top = top_chunks(chunks, docs)
    if q.file is not None and q.file not in docs.texts:
        return Verdict(q, "not_in_folder", f"{q.file} is not in --dir; fix file or the folder", top)
    kinds = {k: [c for c in chunks if kind_of(c, docs, q.file) == k] for k in ("current", "stale")}
    kinds["other"] = [c for c in chunks if c not in kinds["current"] and c not in kinds["stale"]]
    usable = kinds["current"] if q.file is not None else kinds["current"] + kinds["other"]
    have = found(q.expect, usable)
    missing = tuple(e for e in q.expect if e not in have)
    if not missing:
        return Verdict(
            q,
            "passed",
            f"found in {', '.join(_names(usable, docs))}",
            top,
            (),
            _names([c for c in usable if found(q.expect, [c])], docs),
        )
    return _failed(q, kinds, usable, missing, docs, top)


def _failed(
    q: Question,
    kinds: dict[str, list[Mapping[str, Any]]],
    usable: list[Mapping[str, Any]],
    missing: tuple[str, ...],
    docs: Docs,
    top: tuple[dict[str, Any], ...],
) -> Verdict:
    shown = ", ".join(repr(m) for m in missing)
    stale = [c for c in kinds["stale"] if found(missing, [c])]
    other = [c for c in kinds["other"] if found(missing, [c])] if q.file is not None else []
    if stale:
        where = ", ".join(
            f"{n} [{c.get('document_id')}]"
            for n, c in zip(_names(stale, docs), stale, strict=False)
        )
        return Verdict(
            q,
            "stale_document",
            f"{shown} came back only from an old version: {where}",
            top,
            missing,
            _names(stale, docs),
        )
    if other:
        names = _names(other, docs)
        return Verdict(
            q,
            "other_document",
            f"{shown} came back from {', '.join(names)}, not from {q.file}",
            top,
            missing,
            names,
        )
    if not usable:
        return Verdict(
            q,
            "not_retrieved",
            _not_retrieved(q, docs, len(kinds["current"] + kinds["stale"] + kinds["other"])),
            top,
            missing,
        )
    what = f"{q.file}'s current document" if q.file else "the retrieved chunks"
    return Verdict(q, "fact_missing", f"{shown} not in {what} ({len(usable)} chunks)", top, missing)


def _not_retrieved(q: Question, docs: Docs, n: int) -> str:
    if q.file is None:
        return f"no chunk came back ({n} returned)"
    if q.file in docs.prompt:
        return f"{q.file} is attached usage_mode prompt: retrieval never returns it"
    if q.file not in docs.current:
        return f"{q.file} has no current document on the agent (not attached, or an old version)"
    return f"no chunk of {q.file} [{docs.current[q.file]}] among the {n} returned"
