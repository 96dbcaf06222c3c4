"""The RAG index lifecycle, as a small state model: statuses and transitions in one place.

An index belongs to one (document, embedding model). Starting (or restarting) it either ends
it at once (``document_too_small`` under :data:`MIN_INDEX_BYTES`, ``rag_limit_exceeded`` when
the quota has no room) or sets it going on the clock::

    created --(CREATED_FRACTION of the index time)--> processing --(index time)--> succeeded
                                                                               \\-> failed
                                                                               \\-> (stuck:
                                                                    processing at 99% for good)

How an attempt ends (its *fate*) is decided the first time anyone observes it finished, by the
first :class:`IndexBehaviour` that applies (each consumes one of its ``times``). A compute
call on a ``failed`` or ``rag_limit_exceeded`` index restarts it; ``document_too_small`` stays
until the content changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

NEW, CREATED, PROCESSING = "new", "created", "processing"
SUCCEEDED, FAILED = "succeeded", "failed"
TOO_SMALL, LIMIT_EXCEEDED = "document_too_small", "rag_limit_exceeded"
CANNOT_INDEX_FOLDER = "cannot_index_folder"
PENDING = (NEW, CREATED, PROCESSING)
COUNTED = (*PENDING, SUCCEEDED)  # statuses whose document bytes count against the quota
RESTARTABLE = (FAILED, LIMIT_EXCEEDED)  # a compute call starts these again
SUCCEED, FAIL, STUCK = "succeed", "failed", "stuck"  # fates (and index behaviours)
BEHAVIOURS = (FAIL, STUCK, SUCCEED)
MIN_INDEX_BYTES = 500
CREATED_FRACTION = 0.1  # [guess] share of the index time an index spends in `created`
STUCK_PROGRESS = 99.0


@dataclass
class Index:
    id: str
    doc_id: str
    model: str
    t0: float
    terminal: str | None = None  # document_too_small / rag_limit_exceeded / failed / succeeded
    fate: str | None = None  # decided when the index would finish: succeed / failed / stuck

    def start(self, now: float, size: int, room: Callable[[], int], folder: bool = False) -> None:
        """(Re)start at ``now`` for a document of ``size`` bytes; ``room()``: the quota bytes
        the other indexes leave (asked only for a document big enough to index). A folder
        ends at once: ``cannot_index_folder`` [spec]."""
        self.t0, self.terminal, self.fate = now, None, None
        if folder:
            self.terminal = CANNOT_INDEX_FOLDER
        elif size < MIN_INDEX_BYTES:
            self.terminal = TOO_SMALL
        elif size > room():
            self.terminal = LIMIT_EXCEEDED

    def observe(self, now: float, seconds: float, decide: Callable[[], str]) -> tuple[str, float]:
        """``(status, progress_percentage)`` at ``now`` for an index taking ``seconds``;
        ``decide()`` gives the fate of an attempt seen finished for the first time."""
        if self.terminal is not None:
            return self.terminal, (100.0 if self.terminal in (SUCCEEDED, FAILED) else 0.0)
        elapsed = now - self.t0
        if elapsed >= seconds:
            if self.fate is None:
                self.fate = decide()
            if self.fate == STUCK:
                return PROCESSING, STUCK_PROGRESS
            self.terminal = FAILED if self.fate == FAIL else SUCCEEDED
            return self.terminal, 100.0
        if elapsed < seconds * CREATED_FRACTION:
            return CREATED, 0.0
        return PROCESSING, round(min(STUCK_PROGRESS, 100.0 * elapsed / seconds), 1)

    def finish(self) -> None:
        """Succeeded already (a seeded document), unless it ended at its start."""
        if self.terminal is None:
            self.terminal, self.fate = SUCCEEDED, SUCCEED


def at_most(terminal: str | None, size: int) -> int:
    """What an index can use at most, unobserved: a pending one may have failed since."""
    return size if terminal in (None, SUCCEEDED) else 0


def used_bytes(status: str, size: int) -> int:
    """What an index in ``status`` uses of the quota, for a document of ``size`` bytes."""
    return size if status in COUNTED else 0


@dataclass
class IndexBehaviour:
    """A test's override of how index attempts end, for a doc id or a name prefix."""

    match: str
    behaviour: str
    times: int | None

    def applies(self, doc_id: str, name: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        return doc_id == self.match or name.startswith(self.match)


def decide_fate(behaviours: Iterable[IndexBehaviour], doc_id: str, name: str) -> str:
    """The fate of one finished attempt: the first rule that applies (consuming one of its
    ``times``), else ``succeed``."""
    rule = next((b for b in behaviours if b.applies(doc_id, name)), None)
    if rule is None:
        return SUCCEED
    if rule.times is not None:
        rule.times -= 1
    return rule.behaviour
