"""The retry decision, as a small pure function with its own tests.

Retried: 429 (with or without ``Retry-After``), 5xx and connection errors, with bounded
exponential backoff and full jitter. Never retried: other 4xx. A request that is not
idempotent (creating a document) is not retried blindly after an ambiguous failure (5xx,
timeout, dropped connection): the caller looks for what may have been created first.
A 429 means the request was not processed, so even a create may be sent again.

Two budgets: 5xx and transport errors use up ``max_attempts`` (a request that keeps failing
fails); a 429 does not (the server asks for patience, and the client lowers its concurrency,
:mod:`sync.limiter`): its retries are bounded by the run's deadline (``remaining`` seconds,
:func:`run_budget` from the start of the run) and by ``max_limited`` 429s of one request,
whichever comes first.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6  # including the first; 429s do not count
    base: float = 0.5  # seconds
    cap: float = 30.0  # longest single wait
    max_retry_after: float = 120.0  # a server asking for longer is capped
    limited_base: float = 0.1  # the first 429 of a request waits 0.05-0.1 s, then doubles
    limited_cap: float = 2.0  # longest wait after a 429 without Retry-After
    max_limited: int = 500  # 429s of one request before giving up, whatever the deadline
    run_budget: float = 600.0  # the least time from a run's start until 429s are not retried
    release_jitter: float = 0.5  # a shared back-off ends for each worker within +50% of it


def jittered(base: float, cap: float, n: int, rand: Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter for the ``n``-th retry (0-based): in [c/2, c],
    ``c = min(cap, base x 2^n)``."""
    ceiling = min(cap, base * (2 ** min(n, 62)))
    return float(ceiling / 2 + rand() * ceiling / 2)


def backoff(policy: RetryPolicy, attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Full-jitter exponential backoff for the ``attempt``-th retry (0-based)."""
    return jittered(policy.base, policy.cap, attempt, rand)


def parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # HTTP-date form: fall back to our own backoff
    return seconds if seconds >= 0 else None


def decide(
    policy: RetryPolicy,
    attempt: int,
    *,
    status: int | None = None,
    transport_error: bool = False,
    retry_after: float | None = None,
    idempotent: bool = True,
    rand: Callable[[], float] = random.random,
    limited: int = 0,
    remaining: float | None = None,
) -> float | None:
    """Seconds to wait before retrying, or None to give up.

    ``attempt``: the 0-based number of the failures so far that count (5xx, transport), the
    one that just failed included when it is one. ``limited``: the 429s of this request
    before this one. ``remaining``: seconds left until the run's deadline (None: no deadline).
    """
    if status == 429:
        return _after_429(policy, limited, retry_after, remaining, rand)
    if attempt + 1 >= policy.max_attempts:
        return None
    ambiguous = transport_error or (status is not None and status in RETRY_STATUSES)
    if not ambiguous:
        return None
    if not idempotent:
        return None
    return backoff(policy, attempt, rand)


def _after_429(
    policy: RetryPolicy,
    limited: int,
    retry_after: float | None,
    remaining: float | None,
    rand: Callable[[], float],
) -> float | None:
    if limited + 1 >= policy.max_limited:
        return None
    delay = jittered(policy.limited_base, policy.limited_cap, limited, rand)
    if retry_after is not None:
        delay = max(delay, min(retry_after, policy.max_retry_after))
    if remaining is not None and delay > remaining:
        return None  # it would end after the run's deadline
    return delay


def run_budget(policy: RetryPolicy, index_wait: float) -> float:
    """Seconds from a run's start after which a 429 is no longer retried:
    ``max(policy.run_budget, 2 x index_wait + 300)``. A run then ends inside its lease's TTL
    (``max(900, 4 x index_wait + 300)``, :func:`sync.lease.lease_ttl`) even when it waits for
    429s up to the deadline and for its indexes after it."""
    return max(policy.run_budget, 2.0 * index_wait + 300.0)


def shared_wait(
    policy: RetryPolicy, left: float, rand: Callable[[], float] = random.random
) -> float:
    """How long a worker waits for a shared back-off with ``left`` seconds to go: the rest,
    and up to ``release_jitter`` of it more, so the workers do not all go at once when it
    ends (they would meet the server's limit together)."""
    if left <= 0:
        return 0.0
    return left * (1.0 + policy.release_jitter * rand())
