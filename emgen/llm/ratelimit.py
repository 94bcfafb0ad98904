"""Request and token rate limits: a generic cell rate algorithm (GCRA) limiter for asyncio.

Each caller reserves its slot on a virtual timeline and sleeps until it is due, so waiting
costs no polling and callers are served in arrival order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class RateLimiter:
    """At most ``per_minute`` units a minute, allowing a burst of about one second's worth."""

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.interval = 60.0 / per_minute
        self.tolerance = max(per_minute / 60.0, 1.0) * self.interval
        self._clock = clock
        self._tat = clock()

    def reserve(self, units: float = 1.0) -> float:
        """Take ``units`` now; returns the seconds to wait before using them."""
        now = self._clock()
        start = max(self._tat, now)
        self._tat = start + units * self.interval
        return max(0.0, self._tat - self.tolerance - now)

    async def acquire(self, units: float = 1.0) -> None:
        delay = self.reserve(units)
        if delay > 0:
            await asyncio.sleep(delay)

    def adjust(self, units: float) -> None:
        """Correct an earlier reservation by ``units`` (negative gives capacity back)."""
        self._tat += units * self.interval
