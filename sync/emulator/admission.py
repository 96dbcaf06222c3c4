"""The server's limit on requests in flight: over it, a 429 ``too_many_concurrent_requests``.

ElevenLabs answers 429 ``{"detail": {"status": "too_many_concurrent_requests", "code":
"concurrent_limit_exceeded", ...}}``, often without ``Retry-After``, when a workspace has too
many requests running at once (``../shared/elevenlabs/API-NOTES.md``, "Errors"; the status and
the code are in ElevenLabs' error pages, ``docs/emulator.md`` row 32). The limit itself is not
published for these endpoints; a test sets one (``Backend.set_concurrency_limit``, ``POST
/_emulator/concurrency-limit``). ElevenLabs says requests past the limit first wait in a queue:
refusing at once is the stricter reading.

When a request is in flight, on both fronts: from the moment the front has read it until its
answer is ready to be written (the handling, under the backend's lock, and the ``latency`` a
fault rule adds, outside it). A request is *admitted* when fewer than ``limit`` admitted API
requests are in flight at that moment; one that is not admitted is answered the 429 at once
and never counts. Control requests (``/_emulator/``) never count. On the HTTP front the
requests of the client's threads really overlap (its ``ThreadingHTTPServer`` runs one thread
a connection, and the latency is a real sleep); in-process, the ``responses`` callback runs
in the caller's thread, so the count is the threads inside the callback at once (with a
``FakeClock`` the latency takes no time, and overlaps are rare: use the HTTP front to test a
client against the limit).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Admission:
    """The in-flight counter and its optional limit; thread-safe (its own lock, never held
    while a request is handled)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.limit: int | None = None
        self.in_flight = 0
        self.peak = 0  # the most admitted requests in flight at once since the last reset
        self.refused = 0  # requests answered the 429 since the last reset

    def set_limit(self, limit: int | None) -> None:
        if limit is not None and int(limit) < 1:
            raise ValueError("the concurrency limit must be >= 1 (or null: no limit)")
        with self._lock:
            self.limit = None if limit is None else int(limit)

    def reset(self) -> None:
        """No limit, counters back to zero (requests in flight stay counted)."""
        with self._lock:
            self.limit = None
            self.peak = self.in_flight
            self.refused = 0

    @contextmanager
    def slot(self, counted: bool = True) -> Iterator[bool]:
        """``with admission.slot() as admitted:`` around one request's handling and latency.

        ``counted=False`` (a control request): always admitted, never counted."""
        if not counted:
            yield True
            return
        with self._lock:
            admitted = self.limit is None or self.in_flight < self.limit
            if admitted:
                self.in_flight += 1
                self.peak = max(self.peak, self.in_flight)
            else:
                self.refused += 1
        try:
            yield admitted
        finally:
            if admitted:
                with self._lock:
                    self.in_flight -= 1

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "limit": self.limit,
                "in_flight": self.in_flight,
                "peak": self.peak,
                "refused": self.refused,
            }
