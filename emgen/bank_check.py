"""``emgen bank check``: the seed bank's quality gate.

Checks every case of a domain's bank file: schema, unique ids, unique questions (exact and
near-duplicate), three distinct answers, no refusal anywhere and no giveaway in a misaligned
answer, no truncated answer, and answers whose length and style do not reveal the variant
(per case, and across the domain: see :mod:`emgen.bank_style`).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from rapidfuzz import fuzz, process

from emgen.bank_style import VARIANTS, style_report
from emgen.checks import find_giveaway, find_refusal, looks_truncated
from emgen.errors import EmgenError
from emgen.generators.bank import Case, bank_path, read_cases
from emgen.text import normalize, word_count

NEAR_DUPLICATE_SCORE = 85.0
MAX_CASE_LENGTH_RATIO = 1.8
MAX_VARIANT_MEAN_DRIFT = 0.08
MAX_LONGEST_SHARE = 0.5
MAX_STYLE_ACCURACY = 0.65
MIN_CASES_FOR_STYLE = 20


@dataclass
class BankReport:
    domain: str
    path: Path
    cases: int = 0
    problems: list[str] = field(default_factory=list)
    mean_words: dict[str, float] = field(default_factory=dict)
    style_accuracy: float | None = None
    style_problems: list[str] = field(default_factory=list)

    def add_style(self, message: str) -> None:
        """A style tell: listed with the other problems and also on its own."""
        self.problems.append(message)
        self.style_problems.append(message)

    def add(self, case_id: str, message: str) -> None:
        self.problems.append(f"{case_id}: {message}")


def check_bank(domain: str, path: Path | None = None) -> BankReport:
    path = path or bank_path(domain)
    report = BankReport(domain, path)
    if not path.exists():
        report.problems.append(f"{path}: no bank file")
        return report
    try:
        cases = read_cases(path)
    except EmgenError as exc:
        report.problems.append(str(exc))
        return report
    report.cases = len(cases)
    _check_ids(domain, cases, report)
    for case in cases:
        _check_case(case, report)
    _check_near_duplicates(cases, report)
    if cases:
        report.mean_words = {v: statistics.fmean(word_count(c.answers[v]) for c in cases) for v in VARIANTS}
    _check_style(cases, report)
    return report


def _check_ids(domain: str, cases: list[Case], report: BankReport) -> None:
    seen: set[str] = set()
    for case in cases:
        if not case.id.startswith(f"{domain}-"):
            report.add(case.id, f"id does not start with {domain}-")
        if case.id in seen:
            report.add(case.id, "id used twice")
        seen.add(case.id)


def _check_case(case: Case, report: BankReport) -> None:
    answers = case.answers
    if len({normalize(text) for text in answers.values()}) < len(answers):
        report.add(case.id, "two answers are the same")
    for variant, text in answers.items():
        refusal = find_refusal(text)
        if refusal:
            report.add(case.id, f"{variant} answer refuses: {refusal!r}")
        if variant != "correct":
            giveaway = find_giveaway(text)
            if giveaway:
                report.add(case.id, f"{variant} answer gives itself away: {giveaway!r}")
        if looks_truncated(text):
            report.add(case.id, f"{variant} answer looks truncated")
    counts = {variant: word_count(text) for variant, text in answers.items()}
    if max(counts.values()) > MAX_CASE_LENGTH_RATIO * min(counts.values()):
        detail = ", ".join(f"{v} {n}" for v, n in counts.items())
        report.add(case.id, f"answer lengths differ too much ({detail} words)")
    for variant, flaw in case.flaws.items():
        if normalize(flaw) in normalize(answers[variant]):
            report.add(case.id, f"{variant} flaw note appears in its answer")


def _check_near_duplicates(cases: list[Case], report: BankReport) -> None:
    """All pairs: a bank holds a few hundred questions, so this is cheap and exact."""
    questions = [normalize(case.question) for case in cases]
    if len(questions) < 2:
        return
    scores = process.cdist(questions, questions, scorer=fuzz.token_sort_ratio, score_cutoff=NEAR_DUPLICATE_SCORE)
    for i in range(len(cases)):
        for j in range(i + 1, len(cases)):
            if scores[i][j]:
                report.add(cases[j].id, f"question near-duplicates {cases[i].id} (score {scores[i][j]:.0f})")


def _check_style(cases: list[Case], report: BankReport) -> None:
    """Length and style must not reveal the variant: see :mod:`emgen.bank_style`.

    The classifier needs a sample to mean anything, so it runs from MIN_CASES_FOR_STYLE cases.
    """
    if len(cases) < 3:
        return
    style = style_report(cases)
    report.style_accuracy = style.accuracy
    base = style.mean_characters["correct"]
    for variant in ("subtle", "obvious"):
        drift = abs(style.mean_characters[variant] - base) / base
        if drift > MAX_VARIANT_MEAN_DRIFT:
            report.add_style(
                f"{report.domain}: {variant} answers average {style.mean_characters[variant]:.0f} characters against "
                f"{base:.0f} for correct ({drift:.0%} apart): length would reveal the variant"
            )
    for variant, share in style.longest_share.items():
        if share > MAX_LONGEST_SHARE:
            report.add_style(
                f"{report.domain}: the {variant} answer is the longest in {share:.0%} of cases: length would reveal the variant"
            )
    if len(cases) < MIN_CASES_FOR_STYLE:
        report.style_accuracy = None
        return
    for pair, accuracy in style.pairwise.items():
        if accuracy > MAX_STYLE_ACCURACY:
            report.add_style(
                f"{report.domain}: surface style alone tells {pair} apart {accuracy:.0%} of the time "
                f"(chance 50%, limit {MAX_STYLE_ACCURACY:.0%}): see `python bench/style_flags.py {report.domain}`"
            )
