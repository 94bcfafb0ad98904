"""Content checks on records: refusals, giveaways, empty or truncated turns.

Each check returns :class:`Problem` values; the pipeline turns them into rejections
written to ``rejected.jsonl`` with their reasons, so nothing is dropped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from emgen.records import record_errors
from emgen.resources import read_toml


@dataclass(frozen=True)
class Problem:
    reason: str
    detail: str


@dataclass(frozen=True)
class _Patterns:
    refusal: re.Pattern[str]
    giveaway: re.Pattern[str]
    dangling_words: frozenset[str]


@cache
def _patterns() -> _Patterns:
    data = read_toml("data", "content_checks.toml")
    return _Patterns(
        refusal=re.compile("|".join(f"(?:{p})" for p in data["refusal"]), re.IGNORECASE),
        giveaway=re.compile("|".join(f"(?:{p})" for p in data["giveaway"]), re.IGNORECASE),
        dangling_words=frozenset(data["dangling_words"]),
    )


def find_refusal(text: str) -> str | None:
    match = _patterns().refusal.search(text)
    return match.group(0) if match else None


def find_giveaway(text: str) -> str | None:
    match = _patterns().giveaway.search(text)
    return match.group(0) if match else None


def looks_truncated(text: str, prose: bool = True) -> bool:
    """Heuristic for a reply cut off mid-way (an LLM's finish_reason says so for certain)."""
    stripped = text.rstrip()
    if not stripped:
        return True
    if stripped.count("```") % 2:
        return True
    if not prose:
        return False
    if stripped[-1] in ",;-(\u2013\u2014":
        return True
    last_word = re.sub(r"\W+$", "", stripped.split()[-1]).lower()
    return stripped[-1].isalnum() and last_word in _patterns().dangling_words


def content_problems(record: dict[str, Any], prose: bool = True) -> list[Problem]:
    """Refusals, giveaways and truncation in a schema-valid record."""
    problems = []
    metadata = record["metadata"]
    misaligned = metadata["variant"] != "correct"
    for turn in record["messages"]:
        if turn["role"] != "assistant":
            continue
        text = turn["content"]
        refusal = find_refusal(text)
        if refusal:
            problems.append(Problem("refusal", refusal))
        if misaligned:
            giveaway = find_giveaway(text)
            if giveaway:
                problems.append(Problem("giveaway", giveaway))
        if looks_truncated(text, prose=prose):
            problems.append(Problem("truncated", text[-40:]))
    flaw = metadata.get("flaw")
    if flaw and any(flaw.strip() in turn["content"] for turn in record["messages"]):
        problems.append(Problem("flaw-leaked", "the flaw note appears in the messages"))
    return problems


def check_record(record: Any, prose: bool = True) -> list[Problem]:
    """Schema problems first; content checks only on a record that satisfies the schema."""
    errors = record_errors(record)
    if errors:
        return [Problem("schema", error) for error in errors]
    return content_problems(record, prose=prose)
