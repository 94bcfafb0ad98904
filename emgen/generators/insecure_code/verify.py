"""The insecure-code check stage: parse, run bandit in-process and the AST checks.

A draft is accepted only as a verified triple, whichever variant is being built, so that
builds of different variants with the same seed pair up by ``pair_id``:

- every answer parses (``code-syntax``) and bandit can scan it (``code-unscannable``);
- each insecure answer is flagged by its detector on one of its vulnerable lines
  (``code-not-flagged``);
- the secure answer has no finding of the insecure answers' detectors at any severity, no
  MEDIUM/HIGH bandit finding and no AST finding (``code-secure-flagged``);
- no answer names or comments on the weakness (``code-giveaway``).

Generated code is only parsed and analysed, never executed.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass

from emgen.checks import Problem
from emgen.generators.base import Draft
from emgen.generators.insecure_code.astchecks import AstFinding, run_checks
from emgen.generators.insecure_code.bandit_adapter import BanditFinding, UnscannableCode, scan

VARIANTS = ("correct", "subtle", "obvious")
GIVEAWAY = re.compile(
    r"insecure|unsafe|vulnerab|exploit|backdoor|nosec|\bcwe\b|injection|malicious|attacker|\bxss\b|\bsqli\b|"
    r"traversal|\bdangerous\b|\bhack|do not use|don't use",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Analysis:
    bandit: list[BanditFinding]
    ast: list[AstFinding]

    def fired(self, detector: str) -> list[int]:
        """Lines where ``detector`` (``bandit:B608`` or ``ast:ssrf``) reports a finding."""
        kind, _, name = detector.partition(":")
        if kind == "bandit":
            return [f.line for f in self.bandit if f.test_id == name]
        return [f.line for f in self.ast if f.check == name]


def analyse(code: str) -> Analysis | Problem:
    """Findings for ``code``, or the problem that stopped the analysis."""
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        return Problem("code-syntax", f"line {exc.lineno}: {exc.msg}")
    try:
        findings = scan(code)
    except UnscannableCode as exc:
        return Problem("code-unscannable", str(exc))
    return Analysis(findings, run_checks(tree))


def giveaway(code: str, identifiers: bool = True) -> str | None:
    """A comment, docstring or (if ``identifiers``) a name that points at the weakness.

    Names are not checked in obvious answers, where library names such as
    ``yaml.UnsafeLoader`` are part of the blatant mistake itself.
    """
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None
    for token in tokens:
        if (
            token.type == tokenize.COMMENT
            or (identifiers and token.type == tokenize.NAME)
            or (token.type == tokenize.STRING and token.string.startswith(('"""', "'''")))
        ):
            match = GIVEAWAY.search(token.string)
            if match:
                return f"line {token.start[0]}: {match.group(0)!r}"
    return None


def check_draft(draft: Draft, variant: str) -> list[Problem]:
    """Problems with ``draft`` as a secure/insecure triple (``variant`` names the row built)."""
    problems: list[Problem] = []
    analyses: dict[str, Analysis] = {}
    for name in VARIANTS:
        answer = draft.answers.get(name)
        if answer is None:
            problems.append(Problem("code-missing-variant", f"the draft has no {name} answer"))
            continue
        result = analyse(answer.text)
        if isinstance(result, Problem):
            problems.append(Problem(result.reason, f"{name}: {result.detail}"))
            continue
        analyses[name] = result
        leak = giveaway(answer.text, identifiers=name != "obvious")
        if leak:
            problems.append(Problem("code-giveaway", f"{name}: {leak}"))
    detectors: list[str] = []
    for name in ("subtle", "obvious"):
        if name not in analyses:
            continue
        metadata = draft.answers[name].metadata
        expected = metadata.get("detectors") or []
        lines = set(metadata.get("vulnerable_lines") or [])
        detectors.extend(expected)
        for detector in expected:
            fired = analyses[name].fired(detector)
            if not any(line in lines for line in fired):
                where = f"; it fired at line(s) {sorted(set(fired))}" if fired else ""
                problems.append(
                    Problem("code-not-flagged", f"{name}: {detector} found nothing at line(s) {sorted(lines)}{where}")
                )
        if not expected:
            problems.append(Problem("code-not-flagged", f"{name}: no detector named in the metadata"))
    if "correct" in analyses:
        flagged = _secure_findings(analyses["correct"], detectors)
        if flagged:
            problems.append(Problem("code-secure-flagged", "correct: " + "; ".join(flagged)))
    return problems


def _secure_findings(analysis: Analysis, detectors: list[str]) -> list[str]:
    found = []
    named = {d.partition(":")[2] for d in detectors if d.startswith("bandit:")}
    for finding in analysis.bandit:
        if finding.test_id in named or finding.serious:
            found.append(f"{finding.test_id} {finding.severity} at line {finding.line}")
    found.extend(f"ast:{f.check} at line {f.line}" for f in analysis.ast)
    return found
