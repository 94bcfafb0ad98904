"""The LLM client: an OpenAI-compatible endpoint behind concurrency limits, retries and a response cache."""

from emgen.llm.batch import Batcher, BatchState
from emgen.llm.budget import Budget, BudgetExceeded
from emgen.llm.cache import ResponseCache, cache_dir
from emgen.llm.client import ChatRequest, ClientSettings, LLMClient, Reply
from emgen.llm.prices import Price, load_prices, price_for
from emgen.llm.retry import Backoff
from emgen.llm.stats import LLMStats

__all__ = [
    "Backoff",
    "BatchState",
    "Batcher",
    "Budget",
    "BudgetExceeded",
    "ChatRequest",
    "ClientSettings",
    "LLMClient",
    "LLMStats",
    "Price",
    "Reply",
    "ResponseCache",
    "cache_dir",
    "load_prices",
    "price_for",
]
