"""Time as an injectable dependency, so tests never sleep.

The sync waits for RAG indexes through a :class:`Clock`; the emulator moves index statuses on
one. In-process tests hand the same :class:`FakeClock` to both: the sync's ``sleep`` advances
the emulator's time instantly.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass."""


class SystemClock:
    """The real clock, with an optional offset a test server can move forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class FakeClock:
    """A clock that only moves when told to; ``sleep`` moves it at once."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._t = start
        self._lock = threading.Lock()
        self.slept = 0.0

    def now(self) -> float:
        with self._lock:
            return self._t

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        with self._lock:
            self.slept += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._t += seconds
