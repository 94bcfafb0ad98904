"""A spending limit (``--max-cost``) that no request may take a build past.

Every request reserves its worst-case cost before it is sent; when the reply reports its usage
the reservation is replaced by what it actually cost. A request that does not fit waits while
others are outstanding (their settling may free room); when nothing is outstanding and it still
does not fit, the budget is exhausted and no further request is issued. A request whose fate is
unknown (a timeout, a dropped connection, a cancelled request) keeps its whole reservation:
the endpoint may have billed it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from emgen.errors import EmgenError


class BudgetExceeded(EmgenError):
    """The next request could cost more than is left of the budget."""


class Budget:
    """Dollars reserved and spent against ``limit``; use inside one event loop."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.spent = 0.0
        self.held = 0.0
        self.reserved = 0.0
        self.outstanding = 0
        self.waiting = 0
        self.exhausted = False
        self._settled: asyncio.Event | None = None

    @property
    def committed(self) -> float:
        return self.spent + self.held + self.reserved

    def fits(self, amount: float) -> bool:
        return self.committed + amount <= self.limit

    async def reserve(self, amount: float) -> None:
        """Take ``amount`` out of the budget, waiting for outstanding requests if they may free room."""
        while self.exhausted or not self.fits(amount):
            if self.exhausted or self.outstanding == 0:
                self.exhaust()
                raise BudgetExceeded(
                    f"the next request could cost up to ${amount:.4f}, more than the ${self.limit - self.committed:.4f} "
                    f"left of --max-cost ${self.limit:g}"
                )
            if self._settled is None:
                self._settled = asyncio.Event()
            settled = self._settled
            self.waiting += 1
            try:
                await settled.wait()
            finally:
                self.waiting -= 1
        self.reserved += amount
        self.outstanding += 1

    def settle(self, reserved: float, spent: float | None) -> None:
        """Replace a reservation by what the request cost (None: unknown, keep it all as held)."""
        self.reserved -= reserved
        self.outstanding -= 1
        if spent is None:
            self.held += reserved
        else:
            self.spent += spent
        self._wake()

    def exhaust(self) -> None:
        self.exhausted = True
        self._wake()

    def _wake(self) -> None:
        if self._settled is not None:
            self._settled.set()
            self._settled = None

    def report(self) -> dict[str, Any]:
        return {
            "max_cost_usd": self.limit,
            "spent_usd": round(self.spent, 6),
            "held_for_unknown_usd": round(self.held, 6),
            "stopped": self.exhausted,
        }
