"""Getting RAG indexes to ``succeeded``: compute with the agent's model, then poll them all
together until none is pending or the deadline passes (a bounded loop)."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .client import Client
from .clock import Clock
from .errors import NotFound, SyncError
from .log import event
from .results import FINAL, PENDING, DocResult, is_pending


@dataclass
class IndexOptions:
    index_wait: float = 180.0
    failed_retries: int = 2  # recomputes of a `failed` index before giving up
    poll_start: float = 0.5
    poll_max: float = 10.0


class Indexer:
    def __init__(self, client: Client, clock: Clock, model: str, opt: IndexOptions) -> None:
        self.client, self.clock, self.model, self.opt = client, clock, model, opt
        self.quota_hit = threading.Event()
        self._warned: set[str] = set()

    def compute(self, r: DocResult) -> None:
        """One compute call: starts the index, or reads its status when it exists."""
        assert r.doc_id is not None
        try:
            idx = self.client.compute_index(r.doc_id, self.model)
        except NotFound:
            r.status, r.error = "upload_failed", "document vanished"
            return
        except SyncError as exc:
            r.error = str(exc)
            if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429:
                r.status = "error"  # the server refuses this index: do not poll until the deadline
            return  # otherwise (5xx, 429, connection) it stays pending and is polled again
        r.status = str(idx.get("status", "processing")).lower()
        if r.status not in FINAL and r.status not in PENDING and r.doc_id not in self._warned:
            self._warned.add(r.doc_id)
            event(
                "index.unknown_status",
                logging.WARNING,
                id=r.doc_id,
                status=r.status,
                note="not a documented status: polled as pending until the deadline",
            )
        if r.status == "rag_limit_exceeded":
            self.quota_hit.set()

    def _retryable(self, r: DocResult) -> bool:
        return r.status == "failed" and r.recomputes < self.opt.failed_retries

    def _restart_failed(self, results: list[DocResult]) -> None:
        for r in results:
            if self._retryable(r):
                r.recomputes += 1
                r.status = "processing"
                event(
                    "index.recompute",
                    logging.WARNING,
                    file=r.item.file,
                    id=r.doc_id,
                    attempt=r.recomputes,
                )

    def wait(self, results: list[DocResult], pool: ThreadPoolExecutor) -> None:
        start = self.clock.now()
        deadline = start + self.opt.index_wait
        interval = self.opt.poll_start
        if any(is_pending(r.status) for r in results):
            # the upload's own compute call just answered: wait before the first poll
            self.clock.sleep(min(interval, max(0.0, deadline - self.clock.now())))
            interval = min(interval * 1.5, self.opt.poll_max)
        while True:
            self._restart_failed(results)
            pending = [r for r in results if r.pending]
            if pending:
                list(pool.map(self.compute, pending))
            now = self.clock.now()
            for r in results:
                if r.doc_id and not is_pending(r.status) and r.seconds == 0.0:
                    r.seconds = now - start
            pending = [r for r in results if r.pending]
            retry_failed = [r for r in results if self._retryable(r)]
            ready = sum(1 for r in results if r.ready)
            event(
                "index.progress",
                ready=f"{ready}/{len(results)}",
                pending=len(pending),
                waited=round(now - start, 1),
            )
            if not pending and not retry_failed:
                return
            if now >= deadline:
                for r in pending:
                    r.seconds = now - start
                    r.error = f"index still {r.status} after {self.opt.index_wait:g}s"
                return
            self.clock.sleep(min(interval, max(0.0, deadline - now)))
            interval = min(interval * 1.5, self.opt.poll_max)
