"""How many requests the client keeps in flight: an adaptive limit (AIMD), lowered on a 429.

The server's concurrency limit is not published (it depends on the plan and on what else the
workspace runs), so the client learns it: every request takes a slot; a 429 answer lowers the
limit (multiplicative decrease, ``decrease`` x, at least ``floor``), every other answer raises
it a little (additive increase: +1 after ``limit`` answers to requests sent with every slot
taken, back up to ``ceiling``, the ``--concurrency`` asked for). Near the limit at which a
429 came last, the increase is ``probe_every`` times slower, so a run settles just under the
server's limit instead of hitting it every few requests; once it has grown past it, the memory
is dropped.

One overload is one decrease: the 429s of requests sent before the last decrease (under the
higher limit) are old news (``epoch``), as TCP reacts once per round trip. A transport error
is neither (it says nothing of the limit).

The decisions (:func:`on_answer`, :func:`on_limited`) are pure, tested as such;
:class:`AdaptiveLimiter` only adds the lock and the waiting. A worker waiting for a slot is
woken when one frees (one worker a slot, not all at once), and never waits longer than
``wait_cap`` seconds: then it goes over the limit rather than hang (a bounded wait).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

DEFAULT_CONCURRENCY = 8  # --concurrency; see docs/performance.md, "Concurrency"


@dataclass(frozen=True)
class LimitPolicy:
    ceiling: int = DEFAULT_CONCURRENCY  # the most in flight (--concurrency)
    floor: int = 1
    decrease: float = 0.5  # the limit after a 429: limit x decrease (rounded down)
    probe_every: int = 8  # near the last 429's limit, the increase is this many times slower


@dataclass(frozen=True)
class LimitState:
    slots: int  # requests that may be in flight
    credit: int = 0  # answers since the last increase
    epoch: int = 0  # one more each decrease
    edge: int | None = None  # the limit a 429 came at last (None: none, or passed since)
    lowest: int | None = None  # the lowest limit reached (None: never lowered)
    limited: int = 0  # 429 answers seen
    decreases: int = 0


def start(policy: LimitPolicy) -> LimitState:
    return LimitState(slots=max(policy.floor, policy.ceiling))


def on_answer(policy: LimitPolicy, state: LimitState, *, busy: bool = True) -> LimitState:
    """An answer that is not a 429: +1 slot per ``slots`` answers (``probe_every`` times
    slower from one under the last 429's limit), at most the ceiling. Only answers to
    requests sent while the limit was in use count (``busy``, as TCP grows its window only
    when it is full): fewer in flight say nothing of whether one more would pass."""
    if not busy:
        return state
    if state.slots >= policy.ceiling:
        return replace(state, slots=policy.ceiling, credit=0)
    near_edge = state.edge is not None and state.slots >= state.edge - 1
    needed = state.slots * (policy.probe_every if near_edge else 1)
    if state.credit + 1 < needed:
        return replace(state, credit=state.credit + 1)
    slots = state.slots + 1
    edge = None if state.edge is not None and slots > state.edge else state.edge
    return replace(state, slots=slots, credit=0, edge=edge)


def on_limited(policy: LimitPolicy, state: LimitState, sent_epoch: int) -> LimitState:
    """A 429 for a request sent in ``sent_epoch``: lower the limit once per overload."""
    if sent_epoch != state.epoch:  # sent under a higher limit: already reacted to
        return replace(state, limited=state.limited + 1)
    slots = max(policy.floor, math.floor(state.slots * policy.decrease))
    return replace(
        state,
        slots=slots,
        credit=0,
        epoch=state.epoch + 1,
        edge=state.slots,
        lowest=slots if state.lowest is None else min(state.lowest, slots),
        limited=state.limited + 1,
        decreases=state.decreases + (slots < state.slots),  # at the floor: news, no decrease
    )


class Slot:
    """One request's hold on a slot; say what came back with :meth:`answered` or
    :meth:`limited` (neither: a transport error, which says nothing of the limit)."""

    __slots__ = ("busy", "epoch", "lowered", "outcome")

    def __init__(self, epoch: int, busy: bool = True) -> None:
        self.epoch = epoch
        self.busy = busy  # sent with every slot taken: its answer may raise the limit
        self.outcome: str | None = None
        self.lowered = False  # set on release: this request's 429 lowered the limit

    def answered(self) -> None:
        self.outcome = "answered"

    def limited(self) -> None:
        self.outcome = "limited"


class AdaptiveLimiter:
    """Thread-safe: :meth:`slot` around each HTTP exchange."""

    def __init__(
        self,
        policy: LimitPolicy | None = None,
        *,
        wait_cap: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or LimitPolicy()
        self.state = start(self.policy)
        self.in_flight = 0
        self.wait_cap = wait_cap
        self._monotonic = monotonic
        self._cond = threading.Condition()

    def _acquire(self) -> tuple[int, bool]:
        give_up = self._monotonic() + self.wait_cap
        with self._cond:
            while self.in_flight >= self.state.slots:  # bounded: wait_cap
                remaining = give_up - self._monotonic()
                if remaining <= 0:
                    break  # over the limit rather than hang: the server will say so
                self._cond.wait(remaining)
            self.in_flight += 1
            return self.state.epoch, self.in_flight >= self.state.slots

    def _release(self, slot: Slot) -> None:
        with self._cond:
            self.in_flight -= 1
            if slot.outcome == "limited":
                before = self.state.epoch
                self.state = on_limited(self.policy, self.state, slot.epoch)
                slot.lowered = self.state.epoch != before
            elif slot.outcome == "answered":
                self.state = on_answer(self.policy, self.state, busy=slot.busy)
            free = self.state.slots - self.in_flight
            if free > 0:
                self._cond.notify(free)  # one waiting worker a free slot

    @contextmanager
    def slot(self) -> Iterator[Slot]:
        held = Slot(*self._acquire())
        try:
            yield held
        finally:
            self._release(held)

    def summary(self) -> dict[str, int | None]:
        """What the ``concurrency.settled`` log line says."""
        with self._cond:
            s = self.state
            return {
                "limit": s.slots,
                "ceiling": self.policy.ceiling,
                "lowest": s.lowest,
                "limited": s.limited,
                "decreases": s.decreases,
            }
