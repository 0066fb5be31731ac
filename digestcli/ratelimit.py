"""The rate limiter sending workers share (it learns a pace from 429s), and a token bucket."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

Clock = Callable[[], float]


class TokenBucket:
    """Rate tokens a second, at most burst saved up; says at once whether one may be taken.

    For whoever must answer now rather than wait (a server choosing between serving and 429).
    It starts full, so the first `burst` requests go through together.
    """

    def __init__(self, rate: float, burst: float = 1.0, *, clock: Clock = time.monotonic) -> None:
        if not 0 < rate < math.inf:
            raise ValueError(f"a token bucket needs a positive, finite rate, not {rate}")
        self.rate = rate
        self.burst = max(1.0, burst)  # below one token nothing could ever be taken
        self.clock = clock
        self._lock = threading.Lock()
        self._tokens = self.burst
        self._stamp = clock()

    def _refill(self) -> float:
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        return self._tokens

    def try_take(self) -> bool:
        """Take a token if there is one: True means go now, False means not yet."""
        with self._lock:
            if self._refill() >= 1.0:
                self._tokens -= 1.0
                return True
            return False

    def wait(self) -> float:
        """Seconds until a token will be there (0 when one is now); takes nothing."""
        with self._lock:
            return max(0.0, 1.0 - self._refill()) / self.rate


class RateLimiter:
    """Token buckets for messages/s and requests/s, shared by every worker.

    Without a configured request rate it learns one: the first 429 sets the pace just under
    the rate the provider had been accepting, each later 429 trims it by 10 %, and it creeps
    up 1 % a second in between, so a send settles just under the provider's limit.
    """

    WINDOW = 2.0  # seconds of accepted requests the learned pace is measured over
    DECREASE = 0.9  # a 429 sets the pace to 90 % of what was accepted
    INCREASE = 0.01  # then 1 % more each second

    def __init__(
        self,
        messages_per_second: float = 0.0,
        requests_per_second: float = 0.0,
        *,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.mps = messages_per_second
        self.rps = requests_per_second
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self._next_free = clock()
        self._paused_until = 0.0
        self.adaptive = requests_per_second <= 0
        self._accepted: deque[float] = deque()
        self._raised = clock()
        self._lowered = float("-inf")

    def accepted(self) -> None:
        """Note a request the provider accepted (for learning its pace)."""
        if self.adaptive:
            with self._lock:
                now = self.clock()
                self._accepted.append(now)
                while self._accepted and now - self._accepted[0] > self.WINDOW:
                    self._accepted.popleft()

    def throttled(self) -> None:
        """A provider said 429: pace requests just under the rate it was accepting."""
        if not self.adaptive:
            return
        with self._lock:
            now = self.clock()
            if now - self._lowered < 1.0:
                return  # one burst of 429s is one signal, not several
            recent = [t for t in self._accepted if now - t <= self.WINDOW]
            # Over the time actually seen, so the first seconds of a send are not undercounted.
            observed = len(recent) / max(now - recent[0], 0.25) if recent else 0.0
            # The first 429 measures the provider's pace; later ones only trim the learned one,
            # since the waits they impose would make the accepted rate look lower than it is.
            base = self.rps if self.rps > 0 else observed
            self.rps = max(0.5, (base or 1.0) * self.DECREASE)
            self._lowered = self._raised = now

    def pause(self, seconds: float) -> None:
        """Hold every worker back for a while (a provider said 429)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self.clock() + seconds)

    def acquire(self, messages: int) -> float:
        """Wait until a request carrying this many messages may go; return the wait."""
        cost = 0.0
        if self.mps > 0:
            cost = max(cost, messages / self.mps)
        if self.rps > 0:
            cost = max(cost, 1.0 / self.rps)
        with self._lock:
            now = self.clock()
            if self.adaptive and self.rps > 0:
                self.rps *= 1 + self.INCREASE * max(0.0, now - self._raised)
                self._raised = now
            start = max(now, self._next_free, self._paused_until)
            self._next_free = start + cost
        delay = start - now
        if delay > 0:
            self.sleep(delay)
        return delay
