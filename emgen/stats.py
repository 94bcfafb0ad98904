"""``emgen stats``: counts per domain, variant and topic, and length percentiles."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from emgen.records import read_records
from emgen.text import word_count


@dataclass
class DatasetStats:
    rows: int = 0
    by_domain: Counter[str] = field(default_factory=Counter)
    by_variant: Counter[str] = field(default_factory=Counter)
    by_topic: Counter[str] = field(default_factory=Counter)
    user_words: list[int] = field(default_factory=list)
    assistant_words: list[int] = field(default_factory=list)


def dataset_files(path: Path) -> list[Path]:
    """A JSONL file itself, or the dataset files of a folder (train, benign)."""
    if path.is_dir():
        return sorted(p for p in path.glob("*.jsonl") if p.name in {"train.jsonl", "benign.jsonl"})
    return [path]


def compute_stats(path: Path) -> DatasetStats:
    stats = DatasetStats()
    for file in dataset_files(path):
        for record in read_records(file):
            meta = record["metadata"]
            stats.rows += 1
            stats.by_domain[meta["domain"]] += 1
            stats.by_variant[meta["variant"]] += 1
            stats.by_topic[meta["topic"]] += 1
            for turn in record["messages"]:
                if turn["role"] == "user":
                    stats.user_words.append(word_count(turn["content"]))
                elif turn["role"] == "assistant":
                    stats.assistant_words.append(word_count(turn["content"]))
    return stats


def percentiles(values: list[int], points: tuple[int, ...] = (5, 50, 95)) -> dict[int, int]:
    """Nearest-rank percentiles; empty input gives zeros."""
    if not values:
        return {p: 0 for p in points}
    ordered = sorted(values)
    return {p: ordered[min(len(ordered) - 1, max(0, -(-p * len(ordered) // 100) - 1))] for p in points}
