"""The retry decision is a pure function: test it as one."""

from __future__ import annotations

import pytest

from sync.retry import RetryPolicy, backoff, decide, parse_retry_after

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
    assert decide(P, 3, status=429, rand=half) is None


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    lo = [backoff(P, a, lambda: 0.0) for a in range(6)]
    hi = [backoff(P, a, lambda: 1.0) for a in range(6)]
    assert lo == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert hi == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_retry_after_is_honoured_and_capped() -> None:
    assert decide(P, 0, status=429, retry_after=7.0, rand=half) == 7.0
    assert decide(P, 0, status=429, retry_after=0.1, rand=half) == backoff(P, 0, half)
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
