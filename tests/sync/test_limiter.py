"""The adaptive in-flight limit: the AIMD decisions are pure; the limiter's waiting is bounded."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest

from sync.limiter import AdaptiveLimiter, LimitPolicy, LimitState, on_answer, on_limited, start

P = LimitPolicy(ceiling=16, decrease=0.5, probe_every=8)


def answers(state: LimitState, n: int, policy: LimitPolicy = P) -> LimitState:
    for _ in range(n):
        state = on_answer(policy, state)
    return state


def test_it_starts_at_the_ceiling_asked_for() -> None:
    assert start(P).slots == 16
    assert start(LimitPolicy(ceiling=0)).slots == 1  # never below the floor


def test_a_429_halves_the_limit_once_per_overload() -> None:
    s = start(P)
    lowered = on_limited(P, s, sent_epoch=s.epoch)
    assert lowered.slots == 8 and lowered.decreases == 1 and lowered.lowest == 8
    # the other 429s of requests sent under the old limit are old news
    again = on_limited(P, lowered, sent_epoch=s.epoch)
    assert again.slots == 8 and again.decreases == 1 and again.limited == 2
    # a 429 of a request sent under the new limit lowers it again
    twice = on_limited(P, again, sent_epoch=lowered.epoch)
    assert twice.slots == 4 and twice.decreases == 2 and twice.lowest == 4


def test_the_limit_never_goes_below_the_floor() -> None:
    s = start(LimitPolicy(ceiling=2))
    for _ in range(5):
        s = on_limited(P, s, s.epoch)
    assert s.slots == 1 and s.lowest == 1
    assert s.decreases == 1 and s.limited == 5 and s.epoch == 5  # each one news, one decrease


def test_answers_raise_it_by_one_per_limit_answers_up_to_the_ceiling() -> None:
    s = LimitState(slots=4)
    assert answers(s, 3).slots == 4
    assert answers(s, 4).slots == 5
    assert answers(s, 10_000).slots == P.ceiling


def test_near_the_last_429_it_probes_slowly_then_forgets_the_edge() -> None:
    s = on_limited(P, LimitState(slots=5), 0)  # a 429 at 5 in flight -> 2
    assert s.slots == 2 and s.edge == 5
    fast = answers(s, 5)  # 2 -> 4 at +1 per `limit` answers
    assert fast.slots == 4
    assert answers(fast, 4).slots == 4  # at the edge: 8 times slower
    probed = answers(fast, 4 * P.probe_every)
    assert probed.slots == 5 and probed.edge == 5
    # held at the edge for a probe without a 429: past it, forgotten, fast again
    past = answers(probed, 5 * P.probe_every)
    assert past.slots == 6 and past.edge is None
    assert answers(past, 6).slots == 7


def test_the_settled_limit_under_a_server_limit_stays_close_to_it() -> None:
    # a model server that refuses more than 4 in flight: requests are sent `slots` at a time
    s, refused, answered = start(P), 0, 0
    for _ in range(200):
        batch = s.slots
        epoch = s.epoch
        for i in range(batch):
            if i >= 4:
                s, refused = on_limited(P, s, epoch), refused + 1
            else:
                s, answered = on_answer(P, s), answered + 1
    assert 2 <= s.slots <= 5
    assert refused < answered / 10


def test_the_limiter_bounds_what_is_in_flight() -> None:
    limiter = AdaptiveLimiter(LimitPolicy(ceiling=3))
    peak, now, lock = [0], [0], threading.Lock()
    gate = threading.Barrier(3, timeout=10)

    def work(i: int) -> None:
        with limiter.slot() as slot:
            with lock:
                now[0] += 1
                peak[0] = max(peak[0], now[0])
            if i < 3:
                gate.wait()  # the first three are in flight together
            with lock:
                now[0] -= 1
            slot.answered()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(12)))
    assert peak[0] == 3
    assert limiter.in_flight == 0


def test_a_429_lowers_the_limiter_and_answers_raise_it_again() -> None:
    limiter = AdaptiveLimiter(LimitPolicy(ceiling=8))
    with limiter.slot() as slot:
        slot.limited()
    assert slot.lowered and limiter.state.slots == 4
    with limiter.slot() as other:
        other.answered()
    assert not other.lowered
    # one request at a time says nothing of whether 5 would pass: the limit stays (so the
    # limit a run logs as settled is one it used, not one it drifted to while idle)
    for _ in range(100):
        with limiter.slot() as s:
            s.answered()
    assert limiter.state.slots == 4
    # requests that fill it, answered: it grows again, up to the ceiling
    for _ in range(200):
        with ExitStack() as stack:
            held = [stack.enter_context(limiter.slot()) for _ in range(limiter.state.slots)]
            for h in held:
                h.answered()
    assert limiter.summary() == {
        "limit": 8,
        "ceiling": 8,
        "lowest": 4,
        "limited": 1,
        "decreases": 1,
    }


def test_an_answer_while_the_limit_is_not_in_use_does_not_raise_it() -> None:
    s = on_limited(P, start(P), sent_epoch=0)
    assert on_answer(P, s, busy=False) == s
    assert answers(s, s.slots).slots == s.slots + 1


def test_a_transport_error_says_nothing_of_the_limit() -> None:
    limiter = AdaptiveLimiter(LimitPolicy(ceiling=4))
    before = limiter.state
    with pytest.raises(OSError), limiter.slot():
        raise OSError("connection reset")
    assert limiter.state == before and limiter.in_flight == 0


def test_waiting_for_a_slot_is_bounded() -> None:
    # a slot that is never released: the next request goes over the limit after wait_cap
    t = [0.0]

    def clock() -> float:
        t[0] += 1.0  # each look at the clock: a second of waiting
        return t[0]

    limiter = AdaptiveLimiter(LimitPolicy(ceiling=1), wait_cap=0.5, monotonic=clock)
    held = limiter.slot()
    held.__enter__()
    with limiter.slot():
        assert limiter.in_flight == 2
    held.__exit__(None, None, None)
    assert limiter.in_flight == 0
