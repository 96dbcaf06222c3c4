"""A knowledge-base entry (:class:`Doc`: a text document or a folder) and the pure helpers on
documents: the legacy HTML rendering, the default name, the listing's sort key and the folder
tree (paths, children, descendants). No state of its own; :mod:`sync.emulator.models` keeps
the documents."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sync.emulator.retrieval import paragraphs

TEXT, FOLDER = "text", "folder"


@dataclass
class Doc:
    id: str
    name: str
    text: str
    content_format: str
    created_at: float
    updated_at: float
    seq: int
    type: str = TEXT
    parent_id: str | None = None  # the folder it is in (None: the root)

    # the size of ``_sized`` (the text it was computed for: a new text, even one a test
    # assigns directly, is measured again)
    _size: int = field(default=0, init=False, repr=False, compare=False)
    _sized: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def size_bytes(self) -> int:
        """UTF-8 bytes of the text. Cached: the quota check asks it of every index on every
        index start (a 5,000-document push re-encoded 12.5 million texts)."""
        if self._sized is not self.text:
            self._size, self._sized = len(self.text.encode("utf-8")), self.text
        return self._size

    @property
    def is_folder(self) -> bool:
        return self.type == FOLDER

    @property
    def html(self) -> str:
        return render_html(self.text)

    def content(self) -> str:
        """What GET .../content returns: the text for markdown docs, HTML for legacy ones."""
        return self.text if self.content_format == "markdown" else self.html


def render_html(text: str) -> str:
    """The legacy HTML rendering [guess]: one escaped ``<p>`` per blank-line separated block."""
    return "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs(text))


def first_words(text: str, words: int = 6, limit: int = 60) -> str:
    """The default name of a document created without one [guess]."""
    name = " ".join(text.split()[:words])[:limit].strip()
    return name or "Untitled document"


def sort_key(doc: Doc, sort_by: str) -> list[Any]:
    """A document's place in a listing sorted by ``sort_by`` (ties by creation order)."""
    primary: Any = {
        "name": doc.name,
        "created_at": doc.created_at,
        "updated_at": doc.updated_at,
        "size": doc.size_bytes,
    }[sort_by]
    return [primary, doc.seq]


def list_key(doc: Doc, q: Any) -> list[Any]:
    """The sort key in a listing for a :class:`~sync.emulator.validation.ListQuery`:
    ``folders_first`` puts folders first in either direction."""
    key = sort_key(doc, q.sort_by)
    if q.folders_first:
        return [int(doc.is_folder == q.descending), *key]
    return key


# --------------------------------------------------------------------------- the folder tree


def ancestors(docs: Mapping[str, Doc], doc: Doc) -> list[Doc]:
    """The folders from the root down to ``doc``'s parent."""
    chain: list[Doc] = []
    parent = docs.get(doc.parent_id) if doc.parent_id else None
    while parent is not None and parent not in chain:
        chain.insert(0, parent)
        parent = docs.get(parent.parent_id) if parent.parent_id else None
    return chain


def folder_path(docs: Mapping[str, Doc], doc: Doc, names: bool) -> list[dict[str, Any]]:
    """``folder_path``: ``[{id}]`` in listings, ``[{id, name}]`` in a document's own view."""
    return [{"id": f.id, "name": f.name} if names else {"id": f.id} for f in ancestors(docs, doc)]


def children(docs: Iterable[Doc], folder_id: str) -> list[Doc]:
    return [d for d in docs if d.parent_id == folder_id]


def descendants(docs: Mapping[str, Doc], folder_id: str) -> list[Doc]:
    """Everything under the folder, at any depth (parents before their children)."""
    out: list[Doc] = []
    todo = [folder_id]
    while todo:
        here = todo.pop(0)
        for child in children(docs.values(), here):
            if child not in out:
                out.append(child)
                todo.append(child.id)
    return out


def is_within(docs: Mapping[str, Doc], doc: Doc, folder_id: str) -> bool:
    """``doc`` is the folder ``folder_id`` or somewhere under it."""
    return doc.id == folder_id or any(f.id == folder_id for f in ancestors(docs, doc))
