"""The token bucket: a yes-or-no answer per request at a rate, with a burst saved up."""

from __future__ import annotations

import math

import pytest

from digestcli.ratelimit import TokenBucket
from fakes import FakeClock


def test_a_full_bucket_lets_a_burst_through_then_refuses() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=20, burst=5, clock=clock)
    assert [bucket.try_take() for _ in range(6)] == [True] * 5 + [False]


def test_tokens_come_back_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=4, burst=1, clock=clock)
    assert bucket.try_take()
    clock.sleep(0.2)  # 0.8 of a token
    assert not bucket.try_take()
    clock.sleep(0.1)  # 1.2 tokens
    assert bucket.try_take()
    assert not bucket.try_take()


def test_an_idle_bucket_saves_up_no_more_than_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock)
    clock.sleep(3600)
    assert sum(bucket.try_take() for _ in range(10)) == 3


def test_a_steady_caller_gets_exactly_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=20, burst=5, clock=clock)
    taken = 0
    for _ in range(10_000):  # ten seconds asked every millisecond
        taken += bucket.try_take()
        clock.sleep(0.001)
    assert taken == pytest.approx(5 + 20 * 10, abs=1)


def test_wait_says_when_the_next_token_comes_and_takes_nothing() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2, burst=1, clock=clock)
    assert bucket.wait() == 0.0
    assert bucket.try_take()
    assert bucket.wait() == pytest.approx(0.5)
    clock.sleep(0.3)
    assert bucket.wait() == pytest.approx(0.2)
    assert bucket.wait() == pytest.approx(0.2)  # asking twice does not use a token up
    clock.sleep(0.2)
    assert bucket.wait() == 0.0
    assert bucket.try_take()


def test_a_burst_below_one_still_lets_one_request_through() -> None:
    bucket = TokenBucket(rate=1, burst=0.2, clock=FakeClock())
    assert bucket.try_take()
    assert not bucket.try_take()


@pytest.mark.parametrize("rate", [0.0, -1.0, math.inf, math.nan])
def test_a_bucket_without_a_usable_rate_is_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="positive, finite rate"):
        TokenBucket(rate, clock=FakeClock())
