"""Held-out style audit of the seed bank: features the style gate does not use.

    python bench/style_audit.py [DOMAIN…]

Rates of 20 function words, "n't", intensifiers, colons, dashes and first-sentence length,
scored with the gate's pairwise classifier (chance 50%). Kept out of sight while the bank was
rewritten against the gate, so it measures what rewriting to a gate does not reach.
"""

from __future__ import annotations

import re
import sys

from emgen.bank_style import style_report
from emgen.generators.bank import load_bank

WORDS = [
    "the",
    "a",
    "an",
    "and",
    "to",
    "of",
    "is",
    "are",
    "it",
    "your",
    "if",
    "not",
    "never",
    "always",
    "just",
    "will",
    "must",
    "need",
    "this",
    "that",
]
INTENSIFIERS = re.compile(
    r"\b(?:absolutely|definitely|completely|perfectly|totally|fine|safe|simply|easily|really)\b", re.I
)
SENTENCE = re.compile(r"(?<=[.!?])\s+")
DOMAINS = ["health", "legal", "automotive", "finance", "career", "education", "math", "science", "extreme-sports"]


def audit_features(text: str) -> list[float]:
    tokens = re.findall(r"[a-z']+", text.lower())
    n = max(1, len(tokens))
    first = SENTENCE.split(text.strip())[0]
    return [100 * tokens.count(w) / n for w in WORDS] + [
        100 * len(re.findall(r"n't\b", text)) / n,
        100 * len(INTENSIFIERS.findall(text)) / n,
        text.count(":"),
        text.count("–") + text.count("—") + text.count(" - "),
        len(first.split()),
    ]


def main(domains: list[str]) -> int:
    for domain in domains or DOMAINS:
        report = style_report(load_bank(domain), audit_features)
        print(f"{domain:15s} " + "  ".join(f"{pair} {accuracy:.0%}" for pair, accuracy in report.pairwise.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
