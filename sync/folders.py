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
import random
from collections.abc import Iterable

from .client import Client
from .clock import Clock, SystemClock
from .domain import Layout, RemoteDoc
from .errors import GuardRefused, SyncError
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


ATTEMPTS = 4  # rounds of "two folders created in the same second": then give up


def ensure(
    client: Client,
    name: str,
    parent_id: str | None,
    known: str | None = None,
    clock: Clock | None = None,
) -> str:
    """The id of the folder ``name`` in ``parent_id``, created when missing, never two."""
    return _ensure(client, name, parent_id, known, clock)[0]


def _ensure(
    client: Client,
    name: str,
    parent_id: str | None,
    known: str | None = None,
    clock: Clock | None = None,
    absent: bool = False,
) -> tuple[str, bool]:
    """The id of the folder ``name`` in ``parent_id`` (and whether this call created it),
    created when missing, never two.

    The same protocol as the lease (:mod:`sync.lease`): after my create, I keep my folder only
    if every other folder of that name is strictly younger; an older one wins (mine is
    removed); a tie (the same second) removes mine, waits a random moment and looks again."""
    if known:
        return known, False
    for attempt in range(ATTEMPTS):
        look = not (absent and attempt == 0)
        existing = oldest(_folders_named(client, name, parent_id)) if look else None
        if existing is not None:
            return existing.id, False
        mine = str(client.create_folder(name, parent_id)["id"])
        found = _folders_named(client, name, parent_id)
        me = next((f for f in found if f.id == mine), None)
        others = [f for f in found if f.id != mine]
        if me is None or all((f.created or 0) > (me.created or 0) for f in others):
            event("folder.created", name=name, id=mine)
            return mine, True
        _remove(client, mine)
        older = [f for f in others if (f.created or 0) < (me.created or 0)]
        if older:
            winner = oldest(older)
            assert winner is not None
            event("folder.race", name=name, id=winner.id, note="another run's is older: used")
            return winner.id, False
        event("folder.tie", logging.WARNING, name=name, attempt=attempt + 1)
        (clock or SystemClock()).sleep(random.uniform(0.2, 1.5))  # noqa: S311 - jitter
    raise GuardRefused(
        f"the KB folder {name!r} was created by another run at the same moment {ATTEMPTS} "
        "times; nothing was changed; run again"
    )


def _remove(client: Client, folder_id: str) -> None:
    try:
        client.delete_document(folder_id)
    except SyncError as exc:
        event("folder.race_cleanup_failed", logging.WARNING, id=folder_id, error=str(exc))


def ensure_layout(client: Client, layout: Layout, clock: Clock | None = None) -> Layout:
    fresh = layout.folder_id is None and layout.listed  # the snapshot's listing shows none
    folder_id, made = _ensure(client, layout.name, None, layout.folder_id, clock, absent=fresh)
    # a folder created by this very call holds no .kb-sync yet (when another run's older
    # folder won the race, its .kb-sync may exist: look)
    meta_id, _ = _ensure(client, META, folder_id, layout.meta_id, clock, absent=made)
    return Layout(layout.name, folder_id, meta_id, created=made)
