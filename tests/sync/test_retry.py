"""The retry decision is a pure function: test it as one."""

from __future__ import annotations

import pytest

from sync.lease import lease_ttl
from sync.retry import (
    RetryPolicy,
    backoff,
    decide,
    jittered,
    parse_retry_after,
    run_budget,
    shared_wait,
)

P = RetryPolicy(max_attempts=4, base=1.0, cap=8.0)


def half() -> float:
    return 0.5


@pytest.mark.parametrize(
    ("kwargs", "retried"),
    [
        ({"status": 429}, True),
        ({"status": 500}, True),
        ({"status": 502}, True),
        ({"status": 503}, True),
        ({"status": 504}, True),
        ({"transport_error": True}, True),
        ({"status": 400}, False),
        ({"status": 401}, False),
        ({"status": 404}, False),
        ({"status": 422}, False),
        ({"status": 500, "idempotent": False}, False),  # a create: look before retrying
        ({"transport_error": True, "idempotent": False}, False),
        ({"status": 429, "idempotent": False}, True),  # 429 = not processed
    ],
)
def test_what_is_retried(kwargs: dict[str, object], retried: bool) -> None:
    assert (decide(P, 0, rand=half, **kwargs) is not None) is retried  # type: ignore[arg-type]


def test_attempts_are_bounded() -> None:
    assert decide(P, 2, status=503, rand=half) is not None
    assert decide(P, 3, status=503, rand=half) is None
    assert decide(P, 3, transport_error=True, rand=half) is None


def test_a_429_does_not_use_up_the_attempt_budget() -> None:
    # the request was not processed: after 3 counted failures a 429 is still retried
    assert decide(P, 3, status=429, rand=half) is not None
    assert decide(P, 3, status=429, limited=40, rand=half) is not None


def test_429s_are_bounded_by_the_deadline() -> None:
    assert decide(P, 0, status=429, limited=3, remaining=100.0, rand=half) is not None
    wait = jittered(P.limited_base, P.limited_cap, 3, half)
    assert decide(P, 0, status=429, limited=3, remaining=wait / 2, rand=half) is None
    assert decide(P, 0, status=429, remaining=0.0, rand=half) is None
    # a Retry-After that ends after the deadline is not waited for
    assert decide(P, 0, status=429, retry_after=60.0, remaining=30.0, rand=half) is None


def test_429s_of_one_request_are_bounded_even_without_a_deadline() -> None:
    assert decide(P, 0, status=429, limited=P.max_limited - 2, rand=half) is not None
    assert decide(P, 0, status=429, limited=P.max_limited - 1, rand=half) is None


def test_429_backoff_starts_short_and_grows_to_its_cap() -> None:
    waits = [decide(P, 0, status=429, limited=n, rand=lambda: 1.0) for n in range(10)]
    assert waits[0] == P.limited_base
    assert waits == sorted(waits)  # type: ignore[type-var]
    assert waits[-1] == P.limited_cap


def test_shared_backoff_ends_with_jitter_for_each_worker() -> None:
    assert shared_wait(P, 0.0, half) == 0.0
    assert shared_wait(P, -1.0, half) == 0.0
    assert shared_wait(P, 2.0, lambda: 0.0) == 2.0  # never before it ends
    assert shared_wait(P, 2.0, lambda: 1.0) == 2.0 * (1 + P.release_jitter)
    draws = iter((0.1, 0.4, 0.7))
    ends = {shared_wait(P, 2.0, lambda: next(draws)) for _ in range(3)}
    assert len(ends) == 3  # different workers, different moments


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    lo = [backoff(P, a, lambda: 0.0) for a in range(6)]
    hi = [backoff(P, a, lambda: 1.0) for a in range(6)]
    assert lo == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert hi == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_retry_after_is_honoured_and_capped() -> None:
    assert decide(P, 0, status=429, retry_after=7.0, rand=half) == 7.0
    assert decide(P, 3, status=429, retry_after=7.0, rand=half) == 7.0
    short = jittered(P.limited_base, P.limited_cap, 0, half)
    assert decide(P, 0, status=429, retry_after=0.01, rand=half) == short
    assert decide(P, 0, status=429, retry_after=10_000, rand=half) == P.max_retry_after


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("3", 3.0),
        (" 1.5 ", 1.5),
        (None, None),
        ("-1", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
    ],
)
def test_parse_retry_after(raw: str | None, value: float | None) -> None:
    assert parse_retry_after(raw) == value


@pytest.mark.parametrize("index_wait", [0.5, 30.0, 180.0, 299.0, 1000.0, 5000.0])
def test_the_429_deadline_and_then_the_index_wait_end_inside_the_lease(index_wait: float) -> None:
    budget = run_budget(RetryPolicy(), index_wait)
    assert budget >= RetryPolicy().run_budget
    assert budget + index_wait < lease_ttl(index_wait)
