"""Getting RAG indexes to ``succeeded``, overlapped with the uploads (bounded loops).

Each upload worker hands its document to :meth:`Indexer.uploaded`. Computes and polls are
the same get-or-create request, sent for up to 100 documents at once
(``POST /v1/convai/knowledge-base/rag-index``): a new document waits for its compute until
100 are queued, or ``gather`` seconds passed since the oldest was queued, or a poll is due
anyway (oldest upload first; a request with room left also asks about the indexes due next,
for free). Each index is asked about again when its own pace says so (:mod:`sync.pacing`:
its ``progress_percentage``, or a back-off when that says nothing). A server without the
batch endpoint (404/405) gets the one-document calls instead, said once in the log.
:meth:`Indexer.wait`, after the uploads, goes on until nothing is pending or
``index_wait`` seconds passed.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .client import Client
from .clock import Clock
from .errors import NotFound, SyncError
from .log import event
from .pacing import Pace, PaceOptions, progress_of
from .results import FINAL, PENDING, DocResult, is_pending

BATCH_MAX = 100  # [spec] items of one batch request
UNAVAILABLE = (404, 405)  # the server has no batch endpoint
T = TypeVar("T")


@dataclass
class IndexOptions:
    index_wait: float = 180.0
    failed_retries: int = 2  # recomputes of a `failed` index before giving up
    poll_start: float = 0.5
    poll_max: float = 10.0
    poll_min: float = 0.25
    close_cap: float = 2.0  # the longest wait once an index is past close_percent
    close_percent: float = 50.0
    gather: float = 0.5  # the longest a queued compute waits for others to share its request
    batch_size: int = BATCH_MAX

    def pace(self) -> PaceOptions:
        return PaceOptions(
            self.poll_start, self.poll_max, self.poll_min, self.close_cap, self.close_percent
        )


@dataclass(eq=False)
class Track:
    """One document's index as the indexer follows it (in the queue, the heap, or in flight:
    never in two of them)."""

    r: DocResult
    seq: int
    queued_at: float = 0.0
    started: float | None = None  # when its first answer came
    pace: Pace = field(default_factory=Pace)


GONE_GRACE = 30.0  # seconds a gone server has to come back before the index wait ends


class Indexer:
    def __init__(self, client: Client, clock: Clock, model: str, opt: IndexOptions) -> None:
        self.client, self.clock, self.model, self.opt = client, clock, model, opt
        self.pace = opt.pace()
        self.quota_hit = threading.Event()
        self.batch: bool | None = None  # None: not tried yet; False: the server lacks it
        self._lock = threading.Lock()
        self._tracks: dict[str, Track] = {}  # by document id
        self._queue: deque[Track] = deque()  # computes to send, oldest upload first
        self._heap: list[tuple[float, int, Track]] = []  # polls, by when they are due
        self._seq = itertools.count()
        self._warned: set[str] = set()
        self._until: float | None = None  # the index wait's deadline: no retry past it

    # -- during the uploads ------------------------------------------------------------------
    def uploaded(self, r: DocResult) -> None:
        """``r`` is uploaded (or reused): queue its compute; send whatever is due now."""
        with self._lock:
            self._new_track(r, self.clock.now())
        if self.batch is False:  # one request a document: compute it now, as it was
            self._send(self._drain())
            return
        self._send(self._take(self.clock.now(), closing=False))

    def _new_track(self, r: DocResult, now: float) -> Track:
        assert r.doc_id is not None
        track = Track(r, next(self._seq), queued_at=now)
        self._tracks[r.doc_id] = track
        self._queue.append(track)
        return track

    def _drain(self) -> list[Track]:
        with self._lock:
            out = list(self._queue)
            self._queue.clear()
            return out

    def _take(self, now: float, closing: bool, everything: bool = False) -> list[Track]:
        """What to send now: every queued compute (oldest first), the polls due, and the
        polls due next to fill the last request's room; nothing when nothing is due."""
        size = max(1, self.opt.batch_size)
        with self._lock:
            q, heap = self._queue, self._heap
            gathered = len(q) >= size or (q and now - q[0].queued_at >= self.opt.gather)
            computes_due = bool(q) and (closing or bool(gathered))
            polls_due = bool(heap) and (everything or heap[0][0] <= now)
            if not (computes_due or polls_due):
                return []
            taken = list(q)
            q.clear()
            while heap and (everything or heap[0][0] <= now):
                taken.append(heapq.heappop(heap)[2])
            room = -len(taken) % size if self.batch is not False else 0
            while room and heap:
                taken.append(heapq.heappop(heap)[2])
                room -= 1
            return taken

    # -- sending -----------------------------------------------------------------------------
    def _send(self, tracks: list[Track], pool: ThreadPoolExecutor | None = None) -> None:
        if not tracks:
            return
        if self.batch is False:
            _each(self._single, tracks, pool)
            return
        size = max(1, self.opt.batch_size)
        _each(self._batch, [tracks[i : i + size] for i in range(0, len(tracks), size)], pool)

    def _batch(self, chunk: list[Track]) -> None:
        ids = [str(t.r.doc_id) for t in chunk]
        try:
            answer = self.client.compute_indexes(ids, self.model, until=self._until)
        except SyncError as exc:
            if exc.status in UNAVAILABLE:
                self._unavailable(exc)
                for t in chunk:
                    self._single(t)
                return
            now = self.clock.now()
            with self._lock:
                for t in chunk:
                    self._refused(t, exc.status, str(exc), now)
            return
        if self.batch is not True and answer and not any(i in answer for i in ids):
            self._unreadable(sorted(answer)[:3])  # keyed otherwise (guess 31d): one at a time
            for t in chunk:
                self._single(t)
            return
        now = self.clock.now()
        with self._lock:
            self.batch = True
            for t in chunk:
                self._apply_item(t, answer.get(str(t.r.doc_id)), now)

    def _single(self, t: Track) -> None:
        """The one-document compute (it is also the poll)."""
        try:
            idx = self.client.compute_index(str(t.r.doc_id), self.model, until=self._until)
        except NotFound as exc:
            with self._lock:
                self._refused(t, 404, str(exc), self.clock.now())
        except SyncError as exc:
            with self._lock:
                self._refused(t, exc.status, str(exc), self.clock.now())
        else:
            with self._lock:
                self._apply(t, idx, self.clock.now())

    def _unavailable(self, exc: SyncError) -> None:
        with self._lock:
            if self.batch is False:
                return
            self.batch = False
        event(
            "index.batch_unavailable",
            logging.WARNING,
            status=exc.status,
            note="the server does not offer POST /v1/convai/knowledge-base/rag-index: "
            "computing and polling one document at a time",
        )

    def _unreadable(self, keys: list[str]) -> None:
        with self._lock:
            if self.batch is False:
                return
            self.batch = False
        event(
            "index.batch_unreadable",
            logging.WARNING,
            keys=keys,
            note="the batch answer names none of the documents asked for (keyed otherwise than "
            "by document id, docs/emulator.md guess 31d): computing and polling one document "
            "at a time",
        )

    # -- answers (called holding the lock) ----------------------------------------------------
    def _apply_item(self, t: Track, item: Any, now: float) -> None:
        if isinstance(item, dict) and item.get("status") == "success":
            data = item.get("data")
            if isinstance(data, dict):
                self._apply(t, data, now)
                return
        if isinstance(item, dict) and item.get("status") == "failure":
            code = item.get("error_code")
            message = f"{item.get('error_status')}: {item.get('error_message')}"
            self._refused(t, code if isinstance(code, int) else None, message, now)
            return
        self._retry(t, now, "the batch answer has no index for this document")

    def _refused(self, t: Track, status: int | None, message: str, now: float) -> None:
        r = t.r
        if status == 404:
            r.status, r.error = "upload_failed", "document vanished"
        elif status is not None and 400 <= status < 500 and status != 429:
            r.status, r.error = "error", message  # refused: not polled until the deadline
        else:  # 5xx, 429, connection: asked again later
            self._retry(t, now, message)

    def _retry(self, t: Track, now: float, error: str) -> None:
        t.r.error = error
        self._push(t, now + t.pace.next_wait(now, None, self.pace))

    def _push(self, t: Track, due: float) -> None:
        heapq.heappush(self._heap, (due, t.seq, t))

    def _apply(self, t: Track, idx: dict[str, Any], now: float) -> None:
        r = t.r
        r.status, r.error = str(idx.get("status", "processing")).lower(), None
        t.started = now if t.started is None else t.started
        if r.status not in FINAL and r.status not in PENDING and str(r.doc_id) not in self._warned:
            self._warned.add(str(r.doc_id))
            event(
                "index.unknown_status",
                logging.WARNING,
                id=r.doc_id,
                status=r.status,
                note="not a documented status: polled as pending until the deadline",
            )
        if r.status == "rag_limit_exceeded":
            self.quota_hit.set()
        if is_pending(r.status):
            self._push(t, now + t.pace.next_wait(now, progress_of(idx), self.pace))
            return
        r.seconds = now - t.started
        if r.status == "failed" and r.recomputes < self.opt.failed_retries:
            r.recomputes += 1
            r.status = "processing"
            t.pace, t.queued_at = Pace(), now
            self._queue.append(t)
            event("index.recompute", logging.WARNING, file=r.item.file, id=r.doc_id,
                  attempt=r.recomputes)  # fmt: skip

    # -- after the uploads -------------------------------------------------------------------
    def wait(self, results: Sequence[DocResult], pool: ThreadPoolExecutor) -> None:
        """Compute what is still queued and poll until no index is pending, or until
        ``index_wait`` seconds from now (one last round at the deadline)."""
        start = self.clock.now()
        deadline = self._until = start + self.opt.index_wait
        with self._lock:
            for r in results:
                if r.doc_id and r.pending and r.doc_id not in self._tracks:
                    self._new_track(r, start)
        while True:
            now = self.clock.now()
            last = now >= deadline
            sent = self._take(now, closing=True, everything=last)
            self._send(sent, pool)
            now = self.clock.now()
            if sent:
                self._progress(results, now - start)
            with self._lock:
                due = now if self._queue else (self._heap[0][0] if self._heap else None)
            if due is None:
                return
            if last or self._server_gone(now):
                self._give_up(results, now, start)
                return
            self.clock.sleep(max(0.0, min(due, deadline) - now))

    def _server_gone(self, now: float) -> bool:
        """The server refused every attempt of a request GONE_GRACE seconds ago and nothing
        has answered since: the wait ends (a restart within the grace is found again)."""
        since = getattr(self.client, "gone_since", None)
        if since is None or now - since < GONE_GRACE:
            return False
        event(
            "index.server_gone",
            logging.WARNING,
            seconds=round(now - since, 1),
            note="the server has refused every connection since: the index wait ends early",
        )
        return True

    def _progress(self, results: Sequence[DocResult], waited: float) -> None:
        pending = sum(1 for r in results if r.pending)
        ready = sum(1 for r in results if r.ready)
        event(
            "index.progress",
            ready=f"{ready}/{len(results)}",
            pending=pending,
            waited=round(waited, 1),
            batched=self.batch is not False,
        )

    def _give_up(self, results: Sequence[DocResult], now: float, start: float) -> None:
        with self._lock:
            self._queue.clear()
            self._heap.clear()
            for r in results:
                if r.pending:
                    track = self._tracks.get(str(r.doc_id))
                    began = track.started if track and track.started is not None else start
                    r.seconds = now - began
                    r.error = f"index still {r.status} after {self.opt.index_wait:g}s"


def _each(fn: Callable[[T], None], items: list[T], pool: ThreadPoolExecutor | None) -> None:
    if pool is None or len(items) == 1:
        for item in items:
            fn(item)
    else:
        list(pool.map(fn, items))
