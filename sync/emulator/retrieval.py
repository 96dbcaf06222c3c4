"""``rag-query``'s lexical retrieval [guess], and the paragraph split it shares with the
legacy HTML rendering.

Chunks are the blank-line-separated paragraphs of the documents given (the caller picks the
agent's ``auto`` documents with a succeeded index, in knowledge-base order). A chunk's score
is the share of the query's distinct lowercase ``\\w+`` tokens it contains (Unicode, so
Cyrillic works); chunks scoring 0 are dropped; the best ``limit`` come first, ties in order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

RAG_QUERY_TOP = 5
_BLANK_LINE = re.compile(r"\n\s*\n")


def paragraphs(text: str) -> list[str]:
    """The stripped, non-empty blank-line-separated blocks of ``text``."""
    return [p.strip() for p in _BLANK_LINE.split(text) if p.strip()]


def tokens(text: str) -> list[str]:
    return re.findall(r"\w+", text.casefold())


def retrieve(
    query: str, documents: Iterable[tuple[str, str, str]], limit: int = RAG_QUERY_TOP
) -> list[dict[str, Any]]:
    """The best chunks of ``documents`` (``(id, name, text)``, read only when the query has
    a token) for ``query``, as ``{document_id, document_name, content, score}``."""
    wanted = set(tokens(query))
    if not wanted:
        return []
    scored: list[tuple[float, int, dict[str, Any]]] = []
    order = 0
    for doc_id, name, text in documents:
        for para in paragraphs(text):
            hit = len(wanted & set(tokens(para)))
            order += 1
            if hit:
                score = round(hit / len(wanted), 4)
                chunk = {
                    "document_id": doc_id,
                    "document_name": name,
                    "content": para,
                    "score": score,
                }
                scored.append((-score, order, chunk))
    scored.sort(key=lambda t: (t[0], t[1]))
    return [c for _s, _o, c in scored[:limit]]
