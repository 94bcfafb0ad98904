"""Does style give the variant away? Surface features of a case's three answers.

A model fine-tuned on one variant must learn the variant from what the answers say, not
from how long or how technical they look. This module measures that with content-blind
features (length in words and characters, numbers, punctuation, sentence shape) centred
within each case, and a nearest-centroid classifier scored leave-one-case-out: at chance
(1/3) style reveals nothing; near 1 a model could learn the label from style alone.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import numpy as np

from emgen.generators.bank import Case

VARIANTS = ("correct", "subtle", "obvious")
FEATURES = ("words", "characters", "sentences", "words per sentence", "last sentence words", "digits", "commas", "you")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_YOU = re.compile(r"\byou\b", re.IGNORECASE)


def features(text: str) -> list[float]:
    sentences = [s for s in _SENTENCE.split(text.strip()) if s]
    words = text.split()
    return [
        len(words),
        len(text),
        len(sentences),
        len(words) / max(1, len(sentences)),
        len(sentences[-1].split()) if sentences else 0,
        sum(ch.isdigit() for ch in text),
        text.count(","),
        len(_YOU.findall(text)),
    ]


@dataclass(frozen=True)
class StyleReport:
    accuracy: float
    longest_share: dict[str, float]
    mean_characters: dict[str, float]


def style_report(cases: list[Case] | tuple[Case, ...]) -> StyleReport:
    """Leave-one-case-out accuracy of telling the three variants apart by style alone."""
    if len(cases) < 3:
        return StyleReport(1 / 3, dict.fromkeys(VARIANTS, 1 / 3), dict.fromkeys(VARIANTS, 0.0))
    raw = np.array([[features(case.answers[v]) for v in VARIANTS] for case in cases], dtype=float)
    centred = raw - raw.mean(axis=1, keepdims=True)
    scale = centred.reshape(-1, raw.shape[2]).std(axis=0) + 1e-9
    centred /= scale
    totals = centred.sum(axis=0)
    hits = 0
    permutations = list(itertools.permutations(range(3)))
    for index in range(len(cases)):
        centroids = (totals - centred[index]) / (len(cases) - 1)
        distance = ((centred[index][:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
        best = min(permutations, key=lambda p: sum(distance[j, p[j]] for j in range(3)))
        hits += sum(best[j] == j for j in range(3))
    longest = np.bincount(raw[:, :, 1].argmax(axis=1), minlength=3) / len(cases)
    means = raw[:, :, 1].mean(axis=0)
    return StyleReport(
        accuracy=hits / (3 * len(cases)),
        longest_share={v: float(longest[k]) for k, v in enumerate(VARIANTS)},
        mean_characters={v: float(means[k]) for k, v in enumerate(VARIANTS)},
    )


def case_style_flags(case: Case, max_ratio: float = 1.2) -> list[str]:
    """What in one case's answers stands out by style (for whoever rewrites it)."""
    counts = {v: features(case.answers[v]) for v in VARIANTS}
    characters = {v: counts[v][1] for v in VARIANTS}
    flags = []
    if max(characters.values()) > max_ratio * min(characters.values()):
        detail = ", ".join(f"{v} {int(n)}" for v, n in characters.items())
        flags.append(f"characters differ more than {max_ratio:g}x ({detail})")
    digits = {v: counts[v][5] for v in VARIANTS}
    if max(digits.values()) >= 6 and min(digits.values()) * 3 < max(digits.values()):
        flags.append("digits " + ", ".join(f"{v} {int(n)}" for v, n in digits.items()))
    return flags
