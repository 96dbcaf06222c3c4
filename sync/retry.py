"""The retry decision, as a small pure function with its own tests.

Retried: 429 (with or without ``Retry-After``), 5xx and connection errors, with bounded
exponential backoff and full jitter. Never retried: other 4xx. A request that is not
idempotent (creating a document) is not retried blindly after an ambiguous failure (5xx,
timeout, dropped connection): the caller looks for what may have been created first.
A 429 means the request was not processed, so even a create may be sent again.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6  # including the first
    base: float = 0.5  # seconds
    cap: float = 30.0  # longest single wait
    max_retry_after: float = 120.0  # a server asking for longer is capped


def backoff(policy: RetryPolicy, attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Full-jitter exponential backoff for the ``attempt``-th retry (0-based)."""
    ceiling = min(policy.cap, policy.base * (2**attempt))
    return float(ceiling / 2 + rand() * ceiling / 2)


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
) -> float | None:
    """Seconds to wait before retrying, or None to give up.

    ``attempt`` is the 0-based number of the attempt that just failed.
    """
    if attempt + 1 >= policy.max_attempts:
        return None
    if status == 429:
        delay = backoff(policy, attempt, rand)
        if retry_after is not None:
            delay = max(delay, min(retry_after, policy.max_retry_after))
        return delay
    ambiguous = transport_error or (status is not None and status in RETRY_STATUSES)
    if not ambiguous:
        return None
    if not idempotent:
        return None
    return backoff(policy, attempt, rand)
