"""When to ask about a RAG index again: a small pure decision that follows the server.

The index answer carries ``progress_percentage``. While it moves, the rate since it last
changed says when the index should be done: ask then (a little after, never sooner than
``poll_min``, never later than ``poll_max``, and at most ``close_cap`` apart once it is past
``close_percent``, so a server whose progress is not linear costs at most that much). While it
says nothing (absent, ``0`` while ``created``, or stalled, as a stuck index is), back off
from ``poll_start`` by x1.5 up to ``poll_max``, as before.
"""

from __future__ import annotations

from dataclasses import dataclass

MARGIN = 1.1  # ask a little after the estimate: an early poll costs one more request


@dataclass(frozen=True)
class PaceOptions:
    poll_start: float = 0.5
    poll_max: float = 10.0
    poll_min: float = 0.25
    close_cap: float = 2.0
    close_percent: float = 50.0


@dataclass
class Pace:
    """One index's pacing: where its progress last changed, and its back-off."""

    mark: tuple[float, float] | None = None  # (time, progress) when progress took its value
    interval: float = 0.0  # the last back-off wait (0: none yet)

    def next_wait(self, now: float, progress: float | None, opt: PaceOptions) -> float:
        """Seconds to wait before asking again, after an answer at ``now`` with ``progress``."""
        mark = self.mark
        if progress is not None and mark is not None and progress > mark[1] and now > mark[0]:
            rate = (progress - mark[1]) / (now - mark[0])  # percent a second
            wait = estimate(progress, rate, opt)
            self.interval = wait
        else:
            start, grow = opt.poll_start, self.interval * 1.5
            wait = self.interval = start if self.interval <= 0 else min(grow, opt.poll_max)
        if progress is not None and (mark is None or progress != mark[1]):
            self.mark = (now, progress)
        return wait


def estimate(progress: float, rate: float, opt: PaceOptions) -> float:
    """The wait until an index at ``progress`` percent, moving ``rate`` percent a second, is
    done (with a small margin), bounded as the module says."""
    remaining = max(0.0, 100.0 - progress) / rate
    wait = min(max(remaining * MARGIN, opt.poll_min), opt.poll_max)
    if progress >= opt.close_percent:
        wait = min(wait, opt.close_cap)
    return wait


def progress_of(answer: object) -> float | None:
    """``progress_percentage`` of an index answer, when it is a number."""
    value = answer.get("progress_percentage") if isinstance(answer, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
