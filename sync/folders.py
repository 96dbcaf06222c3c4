"""Where kb-sync keeps things in ElevenLabs: one knowledge-base folder per namespace.

* ``<folder>`` (the namespace by default; ``--folder`` / ``KB_SYNC_FOLDER``) at the workspace
  root holds the managed documents, one per local file;
* ``<folder>/.kb-sync`` holds kb-sync's own metadata (the cross-machine lease), never attached
  to an agent and never RAG-indexed.

Found by exact name among the root's folders; created when missing, and never two: after a
create, the folders of that name are listed again and the oldest (server time, then id) wins,
a younger one we just created is removed. Finding is read-only (``plan``, ``--dry-run``);
only a run that writes creates.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from .client import Client
from .domain import Layout, RemoteDoc
from .errors import SyncError
from .log import event

META = ".kb-sync"
__all__ = ["META", "Layout", "ensure", "ensure_layout", "oldest", "root_folder"]


def oldest(folders: Iterable[RemoteDoc]) -> RemoteDoc | None:
    return min(folders, key=lambda f: (f.created or 0, f.id), default=None)


def root_folder(docs: Iterable[RemoteDoc], name: str) -> RemoteDoc | None:
    """The folder of that exact name at the workspace root (the oldest, if a race made two)."""
    return oldest(d for d in docs if d.is_folder and d.name == name and d.parent_id is None)


def _folders_named(client: Client, name: str, parent_id: str | None) -> list[RemoteDoc]:
    listed = client.list_documents(name, parent_folder_id=parent_id, types=("folder",))
    found = (RemoteDoc.from_json(d) for d in listed)
    return [d for d in found if d.is_folder and d.name == name and d.parent_id == parent_id]


def ensure(client: Client, name: str, parent_id: str | None, known: str | None = None) -> str:
    """The id of the folder ``name`` in ``parent_id``, created when missing (never two)."""
    if known:
        return known
    existing = oldest(_folders_named(client, name, parent_id))
    if existing is not None:
        return existing.id
    mine = str(client.create_folder(name, parent_id)["id"])
    winner = oldest(_folders_named(client, name, parent_id))
    winner_id = mine if winner is None else winner.id  # not listed yet: ours
    if winner_id != mine:  # another run created it at the same moment: theirs is older
        try:
            client.delete_document(mine)
        except SyncError as exc:
            event("folder.race_cleanup_failed", logging.WARNING, id=mine, error=str(exc))
    event("folder.created" if winner_id == mine else "folder.race", name=name, id=winner_id)
    return winner_id


def ensure_layout(client: Client, layout: Layout) -> Layout:
    folder_id = ensure(client, layout.name, None, layout.folder_id)
    meta_id = ensure(client, META, folder_id, layout.meta_id)
    return Layout(layout.name, folder_id, meta_id)
