"""Duplicate removal on user prompts. Removed rows are returned with what they duplicate."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from emgen.text import normalize, stable_hash


@dataclass(frozen=True)
class Removal:
    record: dict[str, Any]
    duplicate_of: str
    reason: str
    score: float


def user_prompt(record: dict[str, Any]) -> str:
    """The text of the first user turn: the question the row answers."""
    return next(m["content"] for m in record["messages"] if m["role"] == "user")


class ExactIndex:
    """Streaming exact dedup: remembers the first row id of each normalized prompt."""

    def __init__(self) -> None:
        self._first: dict[str, str] = {}

    def add(self, record: dict[str, Any]) -> str | None:
        """Remember ``record``; return the id of the earlier row it duplicates, if any."""
        key = stable_hash(normalize(user_prompt(record)), 32)
        first = self._first.get(key)
        if first is None:
            self._first[key] = record["metadata"]["id"]
        return first


def exact_dedup(records: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Removal]]:
    """Keep the first row of each normalized user prompt; the rest are removed."""
    index = ExactIndex()
    kept, removed = [], []
    for record in records:
        first = index.add(record)
        if first is None:
            kept.append(record)
        else:
            removed.append(Removal(record, first, "exact", 100.0))
    return kept, removed
