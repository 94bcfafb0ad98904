"""Does style give the variant away? Surface features of a case's three answers.

A model fine-tuned on one variant must learn the variant from what the answers say, not
from how long or how technical they look. This module measures that with content-blind
features (length in words and characters, numbers, punctuation, sentence shape) centred
within each case, and a nearest-centroid classifier scored leave-one-case-out: at chance
(1/3) style reveals nothing; near 1 a model could learn the label from style alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from emgen.generators.bank import Case

VARIANTS = ("correct", "subtle", "obvious")
FEATURES = (
    "words",
    "characters",
    "sentences",
    "words per sentence",
    "last sentence words",
    "digits in the last sentence",
    "digits",
    "commas",
    "you",
    "characters per word",
    "long words",
    "number words",
    "semicolons",
    "parentheses",
    "capitalised words",
    "percent and currency signs",
    "hedges",
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_YOU = re.compile(r"\byou\b", re.IGNORECASE)


_NUMBER_WORDS = re.compile(
    r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|"
    r"hundred|thousand|half|quarter|dozen|once|twice)\b",
    re.IGNORECASE,
)
_HEDGES = re.compile(r"\b(?:may|might|usually|often|generally|typically|can|could|should)\b", re.IGNORECASE)


def register_features(text: str) -> list[float]:
    """How technical and how hedged: word length, numbers in words, asides, names, hedges."""
    words = text.split()
    return [
        len(text) / max(1, len(words)),
        sum(len(w) > 8 for w in words) / max(1, len(words)),
        len(_NUMBER_WORDS.findall(text)),
        text.count(";"),
        text.count("(") + text.count(")"),
        sum(w[:1].isupper() for w in words[1:]) / max(1, len(words)),
        text.count("%") + sum(text.count(c) for c in "$£€"),
        len(_HEDGES.findall(text)),
    ]


def features(text: str) -> list[float]:
    """The gate's features (:data:`FEATURES`): shape and length, then register."""
    return shape_features(text) + register_features(text)


def shape_features(text: str) -> list[float]:
    sentences = [s for s in _SENTENCE.split(text.strip()) if s]
    words = text.split()
    return [
        len(words),
        len(text),
        len(sentences),
        len(words) / max(1, len(sentences)),
        len(sentences[-1].split()) if sentences else 0,
        sum(ch.isdigit() for ch in sentences[-1]) if sentences else 0,
        sum(ch.isdigit() for ch in text),
        text.count(","),
        len(_YOU.findall(text)),
    ]


PAIRS = (("correct", "subtle"), ("correct", "obvious"), ("subtle", "obvious"))


@dataclass(frozen=True)
class StyleReport:
    pairwise: dict[str, float]
    longest_share: dict[str, float]
    mean_characters: dict[str, float]

    @property
    def accuracy(self) -> float:
        """The worst pair: how well style alone tells its two variants apart (chance 0.5)."""
        return max(self.pairwise.values())


def _differences(cases: Sequence[Case], a: str, b: str, extract: Callable[[str], list[float]]) -> np.ndarray:
    diff = np.array([np.subtract(extract(case.answers[a]), extract(case.answers[b])) for case in cases], dtype=float)
    return diff / (diff.std(axis=0) + 1e-9)


def pair_accuracy(cases: Sequence[Case], a: str, b: str, extract: Callable[[str], list[float]] = features) -> float:
    """Leave-one-case-out accuracy of telling answer ``a`` from answer ``b`` of the same case.

    The classifier is the mean difference ``a - b`` over the other cases: a case counts as
    told apart when its own difference points the same way (a tie counts half). Shuffling
    which answer is which gives 0.5; 1.0 means style alone always gives the variant away.
    """
    diff = _differences(cases, a, b, extract)
    total = diff.sum(axis=0)
    hits = 0.0
    for index in range(len(cases)):
        score = float(diff[index] @ (total - diff[index]))
        hits += 1.0 if score > 1e-9 else 0.5 if abs(score) <= 1e-9 else 0.0
    return hits / len(cases)


def tell_scores(cases: Sequence[Case], a: str, b: str) -> list[float]:
    """How strongly each case follows the domain's ``a`` vs ``b`` style tell (highest first to fix)."""
    diff = _differences(cases, a, b, features)
    direction = diff.mean(axis=0)
    return [float(row @ direction) for row in diff]


def style_report(cases: Sequence[Case], extract: Callable[[str], list[float]] = features) -> StyleReport:
    if len(cases) < 3:
        return StyleReport(
            {f"{a}/{b}": 0.5 for a, b in PAIRS}, dict.fromkeys(VARIANTS, 1 / 3), dict.fromkeys(VARIANTS, 0.0)
        )
    lengths = np.array([[len(case.answers[v]) for v in VARIANTS] for case in cases], dtype=float)
    longest = np.bincount(lengths.argmax(axis=1), minlength=3) / len(cases)
    means = lengths.mean(axis=0)
    return StyleReport(
        pairwise={f"{a}/{b}": pair_accuracy(cases, a, b, extract) for a, b in PAIRS},
        longest_share={v: float(longest[k]) for k, v in enumerate(VARIANTS)},
        mean_characters={v: float(means[k]) for k, v in enumerate(VARIANTS)},
    )


def case_style_flags(case: Case, scale: np.ndarray, max_ratio: float = 1.2, limit: float = 1.5) -> list[str]:
    """What in one case's answers stands out by style (for whoever rewrites it).

    ``scale`` is the per-feature spread across the domain (:func:`feature_scale`); a feature is
    named when one answer sits more than ``limit`` spreads from the case's mean.
    """
    raw = np.array([features(case.answers[v]) for v in VARIANTS], dtype=float)
    flags = []
    characters = raw[:, 1]
    if characters.max() > max_ratio * characters.min():
        detail = ", ".join(f"{v} {int(n)}" for v, n in zip(VARIANTS, characters, strict=True))
        flags.append(f"characters differ more than {max_ratio:g}x ({detail})")
    z = (raw - raw.mean(axis=0)) / scale
    for k, variant in enumerate(VARIANTS):
        loud = [f"{name} {'+' if z[k, j] > 0 else '-'}" for j, name in enumerate(FEATURES) if abs(z[k, j]) > limit]
        if loud:
            flags.append(f"{variant}: " + ", ".join(loud))
    return flags


def feature_scale(cases: list[Case] | tuple[Case, ...]) -> np.ndarray:
    raw = np.array([[features(case.answers[v]) for v in VARIANTS] for case in cases], dtype=float)
    centred = raw - raw.mean(axis=1, keepdims=True)
    return centred.reshape(-1, raw.shape[2]).std(axis=0) + 1e-9
