"""The LLM source of drafts (``--backend openai``): prompts, topic lists, and the two-stage generator."""

from emgen.generators.llm.source import LLMSource

__all__ = ["LLMSource"]
