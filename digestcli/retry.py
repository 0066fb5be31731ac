"""How often and how long to retry a batch: backoff with jitter, and a budget for 429s."""

from __future__ import annotations

import random
from dataclasses import dataclass

from digestcli.errors import TemporaryFailure


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded in attempts and in delay."""

    attempts: int = 6
    base: float = 1.0
    cap: float = 60.0
    # Throttling (429) is retried until this much waiting has piled up, however many tries.
    throttle_budget: float = 900.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before the next attempt (attempt counts from 1)."""
        backoff = rng.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))
        if retry_after is not None:
            # The provider's word wins, plus a little jitter so workers do not stampede.
            return min(max(retry_after, 0.0), 3600.0) + rng.uniform(0, self.base / 2)
        return backoff


@dataclass
class Tries:
    """Counts a batch's attempts; throttling (429) waits come out of a time budget instead."""

    policy: RetryPolicy
    count: int = 0
    throttled_wait: float = 0.0

    def next(self) -> int:
        """Start another attempt; return its number."""
        self.count += 1
        return self.count

    def wait_after(self, exc: TemporaryFailure, rng: random.Random) -> float | None:
        """Seconds to wait before trying again, or None to give up."""
        if exc.throttled and self.throttled_wait < self.policy.throttle_budget:
            self.count -= 1  # "too fast" is no failure of the batch: it costs no try
        elif self.count >= self.policy.attempts:
            return None
        delay = self.policy.delay(max(self.count, 1), exc.retry_after, rng)
        if exc.throttled:
            self.throttled_wait += delay
        return delay
