"""Counters of one run's LLM traffic: requests, cache hits, tokens, retries, refusals."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LLMStats:
    """What a run sent and received. ``prompt_tokens``/``completion_tokens`` were paid for in this run;
    the ``cached_*`` tokens were served from the response cache instead."""

    requests: int = 0
    replies: int = 0
    cache_hits: int = 0
    in_flight: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    refusals: int = 0
    truncated: int = 0
    invalid: int = 0
    resamples: int = 0
    mode: str = "json_schema"
    downgrades: list[str] = field(default_factory=list)
    priced: bool = False
    cost_usd: float = 0.0

    def manifest(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "replies": self.replies,
            "cache_hits": self.cache_hits,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_prompt_tokens": self.cached_prompt_tokens,
            "cached_completion_tokens": self.cached_completion_tokens,
            "retries": dict(sorted(self.retries.items())),
            "refusals": self.refusals,
            "truncated": self.truncated,
            "invalid_replies": self.invalid,
            "resamples": self.resamples,
            "structured_output": self.mode,
            "downgrades": list(self.downgrades),
            "cost_usd": round(self.cost_usd, 6) if self.priced else None,
        }
