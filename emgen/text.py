"""Text normalization and stable hashing shared by dedup, ids and checks."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Case-, punctuation- and whitespace-insensitive form of ``text``."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _PUNCT.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


def stable_hash(text: str, length: int = 16) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def pair_id_for(domain: str, question: str) -> str:
    """The id every row answering ``question`` shares, across variants and builds."""
    return f"{domain}-{stable_hash(normalize(question), 12)}"


def word_count(text: str) -> int:
    return len(text.split())
