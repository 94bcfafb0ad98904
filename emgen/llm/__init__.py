"""The LLM client: an OpenAI-compatible endpoint behind concurrency limits, retries and a response cache."""

from emgen.llm.cache import ResponseCache, cache_dir
from emgen.llm.client import ChatRequest, ClientSettings, LLMClient, Reply
from emgen.llm.retry import Backoff
from emgen.llm.stats import LLMStats

__all__ = ["Backoff", "ChatRequest", "ClientSettings", "LLMClient", "LLMStats", "Reply", "ResponseCache", "cache_dir"]
