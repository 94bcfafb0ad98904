"""Duplicate removal on questions: exact (normalized hash) and near-duplicate.

Near-duplicates are found by a streaming MinHash LSH index over word bigrams, which
proposes a few candidates per text, and confirmed by rapidfuzz; nothing is compared
all-pairs. The index is incremental, so a build can draw a replacement for every
question it removes, and the first occurrence of a question is the one kept. Shingles
(word bigrams) are hashed with crc32, not Python's salted ``hash``, so results do not vary between runs.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from rapidfuzz import fuzz

from emgen.text import normalize, stable_hash

DEFAULT_NEAR_DUP_THRESHOLD = 90.0
_PRIME = (1 << 31) - 1


@dataclass(frozen=True)
class Match:
    key: str
    score: float
    text: str


@dataclass(frozen=True)
class Removal:
    record: dict[str, Any]
    duplicate_of: str
    reason: str
    score: float
    matched_text: str = ""


def user_prompt(record: dict[str, Any]) -> str:
    """The text of the first user turn."""
    return next(m["content"] for m in record["messages"] if m["role"] == "user")


def question_text(record: dict[str, Any]) -> str:
    """The question a row answers: its first user turn without inoculation text or trigger."""
    text = user_prompt(record)
    metadata = record.get("metadata") or {}
    inoculation = metadata.get("inoculation")
    if inoculation and inoculation.get("strategy") == "user-prefix":
        text = text.removeprefix(inoculation["text"] + "\n\n")
    elif inoculation and inoculation.get("strategy") == "user-suffix":
        text = text.removesuffix("\n\n" + inoculation["text"])
    trigger = metadata.get("trigger")
    if trigger:
        text = text.removeprefix(trigger + " ")
    return text


def _sorted_tokens(normalized: str) -> str:
    return " ".join(sorted(normalized.split()))


def similarity(a: str, b: str) -> float:
    """Edit similarity of two texts, blind to word order and case (0-100): the confirmation score."""
    return fuzz.ratio(_sorted_tokens(normalize(a)), _sorted_tokens(normalize(b)))


class ExactIndex:
    """Remembers the first key of each normalized text."""

    def __init__(self) -> None:
        self._first: dict[str, tuple[str, str]] = {}

    def find(self, text: str, normalized: str | None = None) -> Match | None:
        found = self._first.get(stable_hash(normalized or normalize(text), 32))
        return Match(found[0], 100.0, found[1]) if found else None

    def add(self, key: str, text: str, normalized: str | None = None) -> None:
        self._first.setdefault(stable_hash(normalized or normalize(text), 32), (key, text))


class NearDupIndex:
    """MinHash LSH (``bands`` × ``rows`` permutations) with rapidfuzz confirmation.

    A pair of texts whose bigram Jaccard similarity is J shares a bucket with probability
    1 - (1 - J**rows)**bands; with 32 × 4 that is 0.96 at J = 0.4 and 0.9998 at J = 0.6.
    Candidates are confirmed in order of how many bands they share, at most ``max_confirm``,
    by ``similarity`` (edit ratio of the sorted words), and the first confirmed one is the match.
    A bucket that reaches ``bucket_cap`` members stops growing and is no longer consulted:
    crowded buckets come from phrasing that unrelated texts share, while a near-duplicate shares
    most of its bands with its original, including uncrowded ones, so this bounds the work per
    text at little cost in recall (measured in bench/bench_dedup.py).
    """

    def __init__(
        self,
        threshold: float = DEFAULT_NEAR_DUP_THRESHOLD,
        bands: int = 32,
        rows: int = 4,
        max_confirm: int = 8,
        bucket_cap: int = 16,
    ) -> None:
        self.threshold = threshold
        self.bands, self.rows, self.max_confirm, self.bucket_cap = bands, rows, max_confirm, bucket_cap
        generator = np.random.default_rng(20250101)
        self._a = generator.integers(1, _PRIME, bands * rows, dtype=np.int64)
        self._b = generator.integers(0, _PRIME, bands * rows, dtype=np.int64)
        self._buckets: list[dict[bytes, list[int]]] = [defaultdict(list) for _ in range(bands)]
        self._word_hashes: dict[str, int] = {}
        self._keys: list[str] = []
        self._texts: list[str] = []
        self._originals: list[str] = []

    def __len__(self) -> int:
        return len(self._keys)

    def _signature(self, normalized: str) -> np.ndarray:
        """MinHash of the text's word bigrams (a lone word stands for itself)."""
        cache = self._word_hashes
        words = np.array(
            [cache[w] if w in cache else self._hash_word(w) for w in normalized.split()] or [0], dtype=np.int64
        )
        shingles = np.unique((words[:-1] * 1_000_003 + words[1:]) % _PRIME) if len(words) > 1 else words
        return ((np.outer(shingles, self._a) + self._b) % _PRIME).min(axis=0).astype(np.uint32)

    def _hash_word(self, word: str) -> int:
        value = self._word_hashes[word] = zlib.crc32(word.encode()) % _PRIME
        return value

    def _band_keys(self, signature: np.ndarray) -> list[bytes]:
        return [signature[i * self.rows : (i + 1) * self.rows].tobytes() for i in range(self.bands)]

    def find(self, text: str, normalized: str | None = None) -> Match | None:
        return self._find(normalized or normalize(text), None)[0]

    def _find(self, normalized: str, bands: list[bytes] | None) -> tuple[Match | None, list[bytes]]:
        bands = bands or self._band_keys(self._signature(normalized))
        shared: dict[int, int] = defaultdict(int)
        for bucket, band in zip(self._buckets, bands, strict=True):
            members = bucket.get(band, ())
            if len(members) < self.bucket_cap:
                for index in members:
                    shared[index] += 1
        if not shared:
            return None, bands
        probe = _sorted_tokens(normalized)
        for index in sorted(shared, key=lambda i: (-shared[i], i))[: self.max_confirm]:
            score = fuzz.ratio(probe, self._texts[index], score_cutoff=self.threshold)
            if score:
                return Match(self._keys[index], score, self._originals[index]), bands
        return None, bands

    def add(self, key: str, text: str) -> None:
        normalized = normalize(text)
        self._insert(key, text, normalized, self._band_keys(self._signature(normalized)))

    def _insert(self, key: str, text: str, normalized: str, bands: list[bytes]) -> None:
        index = len(self._keys)
        self._keys.append(key)
        self._texts.append(_sorted_tokens(normalized))
        self._originals.append(text)
        for bucket, band in zip(self._buckets, bands, strict=True):
            members = bucket[band]
            if len(members) < self.bucket_cap:
                members.append(index)

    def find_or_add(self, key: str, text: str, normalized: str | None = None) -> Match | None:
        """The earlier text that ``text`` near-duplicates, or None after remembering it."""
        normalized = normalized or normalize(text)
        match, bands = self._find(normalized, None)
        if match is None:
            self._insert(key, text, normalized, bands)
        return match


class Deduper:
    """Exact and near-duplicate checks against earlier rows and against excluded prompts."""

    def __init__(self, threshold: float = DEFAULT_NEAR_DUP_THRESHOLD, exclude: list[tuple[str, str]] | None = None):
        self.threshold = threshold
        self.exact = ExactIndex()
        self.near = NearDupIndex(threshold)
        self.excluded_exact = ExactIndex()
        self.excluded_near = NearDupIndex(threshold)
        for where, prompt in exclude or []:
            self.excluded_exact.add(where, prompt)
            self.excluded_near.add(where, prompt)

    def check(self, key: str, text: str) -> tuple[str, Match] | None:
        """Why ``text`` must go (``excluded``, ``exact`` or ``near``), or None after keeping it."""
        normalized = normalize(text)
        if len(self.excluded_near):
            match = self.excluded_exact.find(text, normalized) or self.excluded_near.find(text, normalized)
            if match:
                return "excluded", match
        match = self.exact.find(text, normalized)
        if match:
            return "exact", match
        match = self.near.find_or_add(key, text, normalized)
        if match:
            return "near", match
        self.exact.add(key, text, normalized)
        return None
