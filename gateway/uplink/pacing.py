"""How fast the uplink may try again and how fast it may drain: pure, clock passed in.

Two rates matter after an outage, and both are about many gateways at once:

- *Reconnecting.*  When a broker restarts, every gateway of every site loses
  its connection in the same second.  Retrying on a fixed or purely doubling
  schedule makes them all knock at once again and again; exponential backoff
  with *full jitter* (a uniformly random delay below a doubling ceiling)
  spreads them out (AWS Architecture Blog, "Exponential Backoff and Jitter").
  The ceiling only resets once a connection has stayed up for a while: a
  broker that accepts and then drops a client at once (an ACL, a second
  gateway fighting for the same client id) must not turn into a tight loop.
- *Draining.*  A day of backlog sent as fast as the socket allows would fill a
  cellular link and hit the cloud together with every other gateway coming
  back.  Routine readings therefore drain through a token bucket; express
  batches (alerts, gaps) never wait for it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

#: Backlog drain rate: 500 items/s is ~150 KB/s of JSON, comfortable on 4G and for the cloud, and
#: drains a day of 50 sensors polled each minute (72,000 readings) in under three minutes.
DEFAULT_DRAIN_ITEMS_PER_S = 500.0


class Backoff:
    """Delays between connection attempts: ``uniform(0, min(cap, base * 2**attempt))``."""

    def __init__(
        self, base_s: float = 1.0, cap_s: float = 60.0, *, rng: Callable[[], float] = random.random
    ) -> None:
        if base_s <= 0 or cap_s < base_s:
            raise ValueError("backoff needs 0 < base_s <= cap_s")
        self.base_s = base_s
        self.cap_s = cap_s
        self.attempt = 0
        self._rng = rng

    @property
    def ceiling_s(self) -> float:
        """The upper bound of the next delay."""
        return min(self.cap_s, self.base_s * 2.0 ** min(self.attempt, 62))

    def next_delay(self) -> float:
        """The delay before the next attempt; each call raises the ceiling until it reaches the cap."""
        delay = self._rng() * self.ceiling_s
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """After a connection that held: the next failure starts from ``base_s`` again."""
        self.attempt = 0


class DrainLimiter:
    """A token bucket over sequence-stream items: ``rate_per_s`` on average, ``burst`` at once.

    ``burst`` is one full batch, so a batch never waits for tokens it can never
    get, and traffic below the rate (live readings) passes without delay.
    """

    def __init__(self, rate_per_s: float, burst: int, now: float) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("drain rate must be positive and burst at least 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._tokens = float(burst)
        self._at = now

    def _refill(self, now: float) -> None:
        if now > self._at:
            self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate_per_s)
            self._at = now

    def grant(self, want: int, now: float) -> int:
        """Take ``want`` tokens (capped at ``burst``) if they are all there; else take none and return 0."""
        self._refill(now)
        want = min(want, self.burst)
        if math.isinf(self.rate_per_s) or self._tokens >= want:
            self._tokens -= want
            return want
        return 0

    def refund(self, count: int) -> None:
        """Give back tokens a grant did not use (the outbox returned fewer items)."""
        self._tokens = min(float(self.burst), self._tokens + count)

    def wait_s(self, want: int, now: float) -> float:
        """Seconds until ``want`` tokens (capped at ``burst``) will be there."""
        self._refill(now)
        missing = min(want, self.burst) - self._tokens
        return 0.0 if missing <= 0 else missing / self.rate_per_s
