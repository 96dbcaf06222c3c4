"""``rag-query``'s lexical retrieval [guess], and the paragraph split it shares with the
legacy HTML rendering.

The answer's shape is the spec's (``{retrieval_query, chunks: [{document_id, document_name,
chunk_id, text, vector_distance, content_format, document_type}]}``); how chunks are found is
ours. Chunks are the blank-line-separated paragraphs of the documents given (the caller picks
the agent's ``auto`` documents with a succeeded index, in knowledge-base order). A chunk's
*score* is the share of the query's distinct lowercase ``\\w+`` tokens it contains (Unicode,
so Cyrillic works) and its ``vector_distance`` is ``1 - score``. As the spec describes the
real retrieval: the best ``max_retrieved_rag_chunks_count`` are taken, then those farther than
``max_vector_distance`` dropped, then the total ``max_documents_length`` applied.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

_BLANK_LINE = re.compile(r"\n\s*\n")
STRATEGY = "semantic"  # [spec via SDK types] the field 2.78's type requires; what agents run


@dataclass(frozen=True)
class Source:
    """A document as retrieval sees it (``text``: what its index was built on)."""

    doc_id: str
    name: str
    text: str
    content_format: str = "markdown"
    document_type: str = "text"


@dataclass(frozen=True)
class Settings:
    """The retrieval settings of an agent's ``rag`` (the spec's defaults when not given)."""

    limit: int = 20
    max_distance: float = 0.6
    max_length: int = 50_000

    @classmethod
    def of(cls, rag: dict[str, Any], use_agent_defaults: bool = True) -> Settings:
        """``use_agent_defaults=False``: neutral defaults (the embedding model is the agent's
        either way, which the caller handles) [spec]."""
        if not use_agent_defaults:
            return cls()
        return cls(
            int(rag.get("max_retrieved_rag_chunks_count", cls.limit)),
            float(rag.get("max_vector_distance", cls.max_distance)),
            int(rag.get("max_documents_length", cls.max_length)),
        )


def paragraphs(text: str) -> list[str]:
    """The stripped, non-empty blank-line-separated blocks of ``text``."""
    return [p.strip() for p in _BLANK_LINE.split(text) if p.strip()]


def tokens(text: str) -> list[str]:
    return re.findall(r"\w+", text.casefold())


def chunk_id(doc_id: str, ordinal: int, text: str) -> str:
    """A stable id per (document, place, words) [guess: the spec only shows ``chunk_...``]."""
    digest = hashlib.sha256(f"{doc_id}\0{ordinal}\0{text}".encode()).hexdigest()
    return "chunk_" + digest[:23]


def _chunk(source: Source, ordinal: int, para: str, score: float) -> dict[str, Any]:
    text = para if source.content_format == "markdown" else f"<p>{html.escape(para)}</p>"
    return {
        "document_id": source.doc_id,
        "document_name": source.name,
        "chunk_id": chunk_id(source.doc_id, ordinal, para),
        "text": text,
        "vector_distance": round(1.0 - score, 4),
        "content_format": source.content_format,
        "document_type": source.document_type,
    }


def retrieve(
    query: str, sources: Iterable[Source], settings: Settings = Settings()
) -> list[dict[str, Any]]:
    """The chunks of ``sources`` (read only when the query has a token) for ``query``, best
    first, ties in order, in the API's chunk shape."""
    wanted = set(tokens(query))
    if not wanted:
        return []
    scored: list[tuple[float, int, dict[str, Any]]] = []
    order = 0
    for source in sources:
        for ordinal, para in enumerate(paragraphs(source.text)):
            order += 1
            hit = len(wanted & set(tokens(para)))
            if hit:
                chunk = _chunk(source, ordinal, para, hit / len(wanted))
                scored.append((chunk["vector_distance"], order, chunk))
    scored.sort(key=lambda t: (t[0], t[1]))
    out: list[dict[str, Any]] = []
    length = 0
    for distance, _order, chunk in scored[: settings.limit]:
        if distance > settings.max_distance:
            continue
        length += len(chunk["text"])
        if length > settings.max_length:
            break
        out.append(chunk)
    return out
