"""The offline composer: turns scenarios and contexts into drafts, deterministically.

A draft fills one scenario's slots from one application context and the scenario's own
choices, wraps the code in one of the user-turn phrasings, and carries the correct,
subtle and obvious completions. Drafts are drawn in rounds (every scenario once per
round, in an order shuffled by the caller's ``rng``); each scenario deals the contexts from
its own shuffled deck, so the same task rarely meets the same application twice, and a
candidate whose prompt is too close to an earlier prompt of the same scenario is redrawn, so no two prompts are near
duplicates (word 3-gram Jaccard below :data:`NEAR_DUPLICATE`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass

from emgen.errors import EmgenError
from emgen.generators.base import Answer, Draft
from emgen.generators.insecure_code.library import (
    INSECURE,
    SLOT,
    VARIANTS,
    VULN_MARK,
    Context,
    Scenario,
    companions,
    contexts,
    cwe_names,
    phrasings,
    scenarios,
)
from emgen.text import normalize, pair_id_for

DOMAIN = "insecure-code"
PER_SCENARIO = 150
NEAR_DUPLICATE = 0.6
ATTEMPTS = 30
PARTIAL_SHARE = 0.3
_HOLE = "\x00hole\x00"
_IMPORTS = "\x00imports\x00"


@dataclass(frozen=True)
class Composition:
    scenario: Scenario
    prompt: str
    style: str
    answers: dict[str, str]
    vulnerable_lines: dict[str, list[int]]
    flaws: dict[str, str]


def fill(text: str, slots: dict[str, str]) -> str:
    """``text`` with every ``<<slot>>`` replaced (values may hold slots themselves)."""
    for _ in range(4):
        if "<<" not in text:
            return text
        text = SLOT.sub(lambda m: slots.get(m.group(1), m.group(0)), text)
    missing = sorted(set(SLOT.findall(text)))
    if missing:
        raise EmgenError(f"insecure-code template uses unknown slot(s): {', '.join(missing)}")
    return text


def compose(scenario: Scenario, rng: random.Random, context: Context | None = None) -> Composition:
    """One concrete case of ``scenario``: prompt, three answers, vulnerable lines, flaws."""
    slots = dict((context or rng.choice(contexts())).slots)
    for name in sorted(scenario.choices):
        slots[name] = rng.choice(scenario.choices[name])
    task = fill(rng.choice(scenario.tasks), slots).rstrip(". ")
    docstring = fill(rng.choice(scenario.docstrings), slots)
    code = scenario.code.replace("<<hole>>", _HOLE).replace("<<imports>>", _IMPORTS)
    code = _with_companions(fill(code, slots), slots, rng)
    if docstring:
        code = f'"""{docstring}"""\n\n{code}'
    lines = code.rstrip("\n").split("\n")
    hole_at = next(i for i, line in enumerate(lines) if _HOLE in line)
    indent = lines[hole_at][: len(lines[hole_at]) - len(lines[hole_at].lstrip())]

    answers, vulnerable = {}, {}
    for variant in VARIANTS:
        hole = [indent + line if line.strip() else "" for line in fill(scenario.holes[variant], slots).split("\n")]
        imports = fill(scenario.imports[variant], slots).split("\n") if scenario.imports[variant] else []
        assembled = _tidy(_splice(lines, hole_at, hole, imports))
        marked = [number for number, line in enumerate(assembled, start=1) if VULN_MARK in line]
        answers[variant] = "\n".join(_strip_mark(line) for line in assembled)
        vulnerable[variant] = marked

    prompt_imports = fill(scenario.imports["prompt"], slots).split("\n") if scenario.imports["prompt"] else []
    style, shown = _prompt_code(_tidy(_splice(lines, -1, [], prompt_imports)), indent, rng)
    phrasing = rng.choice(phrasings().template if style == "template" else phrasings().partial)
    prompt = phrasing.replace("<<task>>", task).replace("<<code>>", shown)
    flaws = {variant: fill(scenario.flaws[variant], slots) for variant in INSECURE}
    return Composition(scenario, prompt, style, answers, vulnerable, flaws)


def _with_companions(code: str, slots: dict[str, str], rng: random.Random) -> str:
    """``code`` with up to two neutral helper blocks placed before its first function."""
    library = companions()
    chosen = rng.sample(library.blocks, rng.choice((0, 1, 1, 2)))
    if not chosen:
        return code
    local = dict(slots) | {name: rng.choice(values) for name, values in sorted(library.slots.items())}
    lines = code.split("\n")
    first = next((i for i, line in enumerate(lines) if line.startswith(("def ", "@", "class ", "async def "))), None)
    if first is None:
        return code
    blocks = "\n\n\n".join(fill(block, local) for block in chosen).split("\n")
    return "\n".join([*lines[:first], *blocks, "", "", *lines[first:]])


def _splice(lines: list[str], hole_at: int, hole: list[str], imports: list[str]) -> list[str]:
    out: list[str] = []
    for index, line in enumerate(lines):
        if index == hole_at:
            out.extend(hole)
        elif _IMPORTS in line:
            out.extend(imports)
        else:
            out.append(line)
    return out


def _tidy(lines: list[str]) -> list[str]:
    """No leading blank lines and at most two blank lines in a row (as after an empty import block)."""
    out: list[str] = []
    for line in lines:
        if not line.strip() and (not out or (len(out) >= 2 and not out[-1].strip() and not out[-2].strip())):
            continue
        out.append(line)
    return out


def _strip_mark(line: str) -> str:
    return line.replace(VULN_MARK, "").rstrip() if VULN_MARK in line else line


def _prompt_code(lines: list[str], indent: str, rng: random.Random) -> tuple[str, str]:
    """The code the user shows: up to the hole ("partial") or all of it with the placeholder."""
    hole_at = next(i for i, line in enumerate(lines) if _HOLE in line)
    if rng.random() < PARTIAL_SHARE:
        return "partial", "\n".join(lines[:hole_at]).rstrip()
    placeholder = indent + phrasings().placeholder
    shown = [placeholder if i == hole_at else line for i, line in enumerate(lines)]
    return "template", "\n".join(shown).rstrip()


_WORD = re.compile(r"\S+")


def shingles(text: str, size: int = 3) -> frozenset[tuple[str, ...]]:
    """Word ``size``-grams of the normalized text: the unit of near-duplicate comparison."""
    words = _WORD.findall(normalize(text))
    return frozenset(tuple(words[i : i + size]) for i in range(max(1, len(words) - size + 1)))


def jaccard(a: frozenset, b: frozenset) -> float:
    if not a and not b:
        return 1.0
    common = len(a & b)
    return common / (len(a) + len(b) - common)


def draft_from(composition: Composition) -> Draft:
    scenario = composition.scenario
    all_detectors = sorted(set(scenario.detectors.values()))
    answers = {}
    for variant in VARIANTS:
        metadata = {
            "cwe": scenario.cwe,
            "cwe_name": cwe_names()[scenario.cwe],
            "scenario": scenario.id,
            "detectors": [scenario.detectors[variant]] if variant in INSECURE else all_detectors,
            "vulnerable_lines": composition.vulnerable_lines[variant],
            "prompt_style": composition.style,
        }
        answers[variant] = Answer(
            text=composition.answers[variant], flaw=composition.flaws.get(variant), metadata=metadata
        )
    return Draft(
        domain=DOMAIN,
        pair_id=pair_id_for(DOMAIN, composition.prompt),
        topic=scenario.topic,
        prompt=composition.prompt,
        answers=answers,
        source="composer",
    )


class ComposerSource:
    """Drafts composed offline from the scenario library (see the module docstring)."""

    def available(self) -> int:
        return len(scenarios()) * PER_SCENARIO

    def drafts(self, rng: random.Random, n: int | None) -> Iterator[Draft]:
        limit = self.available() if n is None else min(n, self.available())
        active = list(scenarios())
        kept: dict[str, list[frozenset]] = {s.id: [] for s in active}
        decks: dict[str, list[Context]] = {s.id: [] for s in active}
        produced = 0
        while produced < limit and active:
            rng.shuffle(active)
            for scenario in list(active):
                if produced >= limit:
                    return
                earlier = kept[scenario.id]
                composition = None
                for _ in range(ATTEMPTS):
                    deck = decks[scenario.id]
                    if not deck:
                        deck.extend(contexts())
                        rng.shuffle(deck)
                    candidate = compose(scenario, rng, deck.pop())
                    grams = shingles(candidate.prompt)
                    if all(jaccard(grams, other) < NEAR_DUPLICATE for other in earlier):
                        composition = candidate
                        earlier.append(grams)
                        break
                if composition is None or len(earlier) >= PER_SCENARIO:
                    active.remove(scenario)
                if composition is not None:
                    produced += 1
                    yield draft_from(composition)
