"""The LLM traffic of one generation run: the generator's client and the judge's, the budget they
share, the Batch API state they share, and the counters the live display and the manifest show."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from emgen.errors import ConflictError
from emgen.llm.batch import Batcher, BatchState
from emgen.llm.budget import Budget
from emgen.llm.client import ClientSettings, LLMClient
from emgen.recipe import Recipe

if TYPE_CHECKING:
    from emgen.generators.llm.source import LLMSource


def settings_for(recipe: Recipe) -> ClientSettings:
    """Client settings from a recipe; None fields take the client's defaults."""
    if not recipe.model:
        raise ConflictError("--backend openai needs --model")
    given = {
        "base_url": recipe.base_url,
        "api_key_env": recipe.api_key_env,
        "concurrency": recipe.concurrency,
        "rpm": recipe.rpm,
        "tpm": recipe.tpm,
        "timeout": recipe.timeout,
        "max_retries": recipe.max_retries,
        "cache": recipe.cache,
        "batch_poll": recipe.batch_poll,
    }
    return ClientSettings(model=recipe.model, **{k: v for k, v in given.items() if v is not None})


class Traffic:
    """Use inside the run's event loop: :meth:`open` … :meth:`close`."""

    def __init__(self, source: LLMSource, base: int) -> None:
        self.budget = Budget(source.max_cost) if source.max_cost is not None else None
        state = BatchState(source.out_dir) if source.batch else None
        self.client = LLMClient(source.settings, seed=base, price=source.price, budget=self.budget, batch_state=state)
        self.judge: LLMClient | None = None
        if source.judge_settings is not None:
            self.judge = LLMClient(
                source.judge_settings, seed=base, price=source.judge_price, budget=self.budget, batch_state=state
            )

    @property
    def clients(self) -> list[LLMClient]:
        return [self.client] if self.judge is None else [self.client, self.judge]

    async def open(self, on_batch_progress: Callable[[], None]) -> None:
        for client in self.clients:
            await client.open()
        for batcher in self.batchers():
            batcher.progress = lambda current: on_batch_progress()

    async def close(self) -> None:
        for client in self.clients:
            await client.close()

    def batchers(self) -> list[Batcher]:
        return [c.batcher for c in self.clients if c.batcher is not None]

    def blocked(self, running: int) -> bool:
        """Whether all ``running`` requests wait on a batcher or on the budget (nothing else can happen)."""
        waiting = sum(b.waiting for b in self.batchers()) + (self.budget.waiting if self.budget else 0)
        return waiting >= running

    async def flush(self) -> None:
        """Send the waiting requests as batches and collect them; with none waiting but some held by the
        budget, nothing can free room for them, so the budget is exhausted."""
        ready = [b for b in self.batchers() if b.waiting]
        if ready:
            await asyncio.gather(*(b.flush() for b in ready))
        elif self.budget is not None and self.budget.waiting:
            self.budget.exhaust()

    def batch_report(self) -> dict[str, Any] | None:
        batchers = self.batchers()
        if not batchers:
            return None
        return {
            "batches": [i for b in batchers for i in b.created],
            "resumed": [i for b in batchers for i in b.resumed],
        }

    def counters(self) -> dict[str, Any]:
        """The traffic of both clients together, for the live display."""
        every = [c.stats for c in self.clients]
        return {
            "requests": sum(s.requests for s in every),
            "cache_hits": sum(s.cache_hits for s in every),
            "in_flight": sum(s.in_flight for s in every),
            "retries": sum(sum(s.retries.values()) for s in every),
            "prompt_tokens": sum(s.prompt_tokens for s in every),
            "completion_tokens": sum(s.completion_tokens for s in every),
            "cost_usd": sum(s.cost_usd for s in every) if all(s.priced for s in every) else None,
            "max_cost_usd": self.budget.limit if self.budget is not None else None,
            "mode": self.client.stats.mode,
            "batch": next((b.current for b in self.batchers() if b.current is not None), None),
        }
