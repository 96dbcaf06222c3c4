"""Mutual exclusion across machines, held in ElevenLabs (the one thing every machine shares).

A run that is about to write takes a *lease*: an empty folder in ``<folder>/.kb-sync`` (never
attached, never indexed) whose name carries the holder:
``lease:<agent id>:<run id>:<ttl seconds>:<host>:<pid>:<command>``. The API has no
compare-and-swap, so the protocol rests on what it does have, a create and a listing that
carries each entry's creation time (``metadata.created_at_unix_secs``, the server's clock):

1. create my lease; 2. list every lease of this agent; 3. leases older than their TTL are
expired (a crashed holder): ignored, and deleted by the winner (logged as a takeover);
4. I hold the lease iff every other live lease was created strictly after mine. Two leases of
the same second both back off, delete themselves, wait a random moment and try again
(bounded). A lease created after mine was created after my listing could have missed it, so
its creator's listing sees mine, older: at most one run holds the lease.

The remaining window: a listing that does not yet show an entry created a moment before (the
API documents no read-after-write guarantee). ``kb-sync unlock LEASE_ID`` removes a stuck
lease, like ``terraform force-unlock``. ``plan`` and ``push --dry-run`` take none.
"""

from __future__ import annotations

import logging
import os
import random
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .client import Client
from .clock import Clock
from .domain import Layout, RemoteDoc
from .errors import GuardRefused, InputError, SyncError
from .folders import ensure_layout
from .log import event

PREFIX = "lease:"
ATTEMPTS = 4  # rounds of "two leases in the same second": then give up (exit 4)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def lease_ttl(index_wait: float) -> int:
    """Longer than any run can take: every wait of a run is bounded by the index wait."""
    return int(max(900.0, 4 * index_wait + 300))


def lease_prefix(agent_id: str) -> str:
    return f"{PREFIX}{agent_id}:"


@dataclass(frozen=True)
class Lease:
    id: str
    run_id: str
    created: int  # the server's clock, seconds
    ttl: int
    holder: str = ""  # "host H, pid P, command C"

    @classmethod
    def parse(cls, doc: dict[str, object], prefix: str) -> Lease | None:
        name = str(doc.get("name", ""))
        if not name.startswith(prefix) or doc.get("type", "folder") != "folder":
            return None
        run_id, ttl, host, pid, command = (name[len(prefix) :].split(":") + [""] * 5)[:5]
        meta = doc.get("metadata")
        created = meta.get("created_at_unix_secs") if isinstance(meta, dict) else None
        if not run_id or not ttl.isdigit() or not isinstance(created, int):
            return None
        holder = f"host {host}, pid {pid}, command {command}"
        return cls(str(doc["id"]), run_id, created, int(ttl), holder)

    def expired(self, now: int) -> bool:
        return now > self.created + self.ttl


def lease_name(agent_id: str, run_id: str, ttl: int, command: str) -> str:
    host = _UNSAFE.sub("-", socket.gethostname())[:40] or "unknown"
    return (
        f"{lease_prefix(agent_id)}{run_id}:{ttl}:{host}:{os.getpid()}:{_UNSAFE.sub('-', command)}"
    )


class LeaseManager:
    def __init__(self, client: Client, clock: Clock, meta_id: str, agent_id: str, ttl: int) -> None:
        self.client, self.clock, self.ttl = client, clock, ttl
        self.agent_id, self.meta_id = agent_id, meta_id
        self.prefix = lease_prefix(agent_id)
        # everything in .kb-sync at the last listing: the leases, and the stored runs (the
        # history prunes from it: while the lease is held nobody else stores a run)
        self.listed: list[RemoteDoc] = []
        self.released: set[str] = set()  # a run releases once its last write is done

    def _leases(self) -> list[Lease]:
        raw = list(self.client.list_documents(parent_folder_id=self.meta_id))
        self.listed = [RemoteDoc.from_json(d) for d in raw]
        found = (Lease.parse(d, self.prefix) for d in raw)
        return [x for x in found if x is not None]

    def _create(self, run_id: str, command: str) -> tuple[Lease, list[Lease]]:
        """Create my lease and list them all: (mine, the others)."""
        name = lease_name(self.agent_id, run_id, self.ttl, command)
        doc_id = str(self.client.create_folder(name, self.meta_id)["id"])
        leases = self._leases()
        mine = next((x for x in leases if x.id == doc_id), None)
        if mine is None:  # not listed yet: the window the module docstring names
            self.client.delete_document(doc_id)
            raise GuardRefused(
                "the lease just created is not listed yet; nothing was changed; run again"
            )
        return mine, [x for x in leases if x.id != doc_id]

    def acquire(self, run_id: str, command: str) -> Lease:
        for attempt in range(ATTEMPTS):
            mine, others = self._create(run_id, command)
            now = mine.created
            live = [x for x in others if not x.expired(now)]
            if all(x.created > mine.created for x in live):
                for x in others:
                    if x.expired(now):
                        self._take_over(x, now)
                event("lease.acquired", id=mine.id, run=run_id, ttl=self.ttl)
                return mine
            self.client.delete_document(mine.id)
            older = [x for x in live if x.created < mine.created]
            if older:
                raise self._held_by(min(older, key=lambda x: (x.created, x.id)), now)
            event("lease.tie", logging.WARNING, attempt=attempt + 1, note="same second")
            self.clock.sleep(random.uniform(0.2, 1.5))  # noqa: S311 - jitter, not crypto
        raise GuardRefused(
            f"another kb-sync run took the lease for agent {self.agent_id} at the same moment "
            f"{ATTEMPTS} times; nothing was changed; run again"
        )

    def _take_over(self, old: Lease, now: int) -> None:
        event(
            "lease.takeover",
            logging.WARNING,
            id=old.id,
            run=old.run_id,
            age=now - old.created,
            note="expired: its holder stopped without releasing it",
        )
        try:
            self.client.delete_document(old.id)
        except SyncError as exc:
            event("lease.takeover_failed", logging.WARNING, id=old.id, error=str(exc))

    def _held_by(self, other: Lease, now: int) -> GuardRefused:
        return GuardRefused(
            f"another kb-sync run holds the lease for agent {self.agent_id} ({other.holder}; "
            f"taken {now - other.created}s ago, expires in "
            f"{max(0, other.created + other.ttl - now)}s; lease {other.id}); nothing was "
            f"changed; wait for it, or if it crashed: kb-sync unlock {other.id}"
        )

    def release(self, lease: Lease) -> None:
        """Delete the lease (once: a second call is a no-op), so that the run's request
        count, logged and recorded after it, includes it."""
        if lease.id in self.released:
            return
        self.released.add(lease.id)
        try:
            self.client.delete_document(lease.id)
            event("lease.released", id=lease.id)
        except SyncError as exc:  # it expires on its own
            event("lease.release_failed", logging.WARNING, id=lease.id, error=str(exc))

    @contextmanager
    def held(self, run_id: str, command: str) -> Iterator[Lease]:
        lease = self.acquire(run_id, command)
        try:
            yield lease
        finally:
            self.release(lease)

    def unlock(self, lease_id: str) -> str:
        """Remove the named lease of this agent; never any other document."""
        try:
            doc = self.client.get_document(lease_id)
        except SyncError as exc:
            raise InputError(
                f"{lease_id}: no such lease ({exc}); pass the id a refused run named in its "
                "error line"
            ) from None
        if not str(doc.get("name", "")).startswith(self.prefix) or doc.get("type") != "folder":
            raise InputError(
                f"{lease_id}: is not a kb-sync lease of agent {self.agent_id} "
                f"({doc.get('name')!r}); nothing was deleted; pass a lease id"
            )
        self.client.delete_document(lease_id)
        event("lease.unlocked", logging.WARNING, id=lease_id, name=doc.get("name"))
        return str(doc.get("name"))


def writing(
    client: Client, clock: Clock, layout: Layout, agent_id: str, index_wait: float
) -> tuple[Layout, LeaseManager]:
    """What a run that is about to write needs: our folder and .kb-sync (created when
    missing), and the leases of this agent in it."""
    layout = ensure_layout(client, layout, clock)
    assert layout.meta_id is not None
    return layout, LeaseManager(client, clock, layout.meta_id, agent_id, lease_ttl(index_wait))
