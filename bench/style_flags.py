"""Per-case style report for rewriting a bank domain until style no longer reveals the variant.

    python bench/style_flags.py legal

Prints the domain's figures, then for each pair of variants whose style still tells them
apart, the cases that follow that tell most strongly (fix those first), with the features
(emgen/bank_style.py FEATURES) on which one answer stands out: + more, - less.
"""

from __future__ import annotations

import sys

from emgen.bank_check import MAX_LONGEST_SHARE, MAX_STYLE_ACCURACY, MAX_VARIANT_MEAN_DRIFT
from emgen.bank_style import PAIRS, case_style_flags, feature_scale, style_report, tell_scores
from emgen.generators.bank import bank_path, read_cases


def main(domain: str, shown: int = 25) -> int:
    cases = read_cases(bank_path(domain))
    report = style_report(cases)
    print(f"{domain}: {len(cases)} cases")
    for pair, accuracy in report.pairwise.items():
        print(f"  style tells {pair} apart {accuracy:.0%} of the time (limit {MAX_STYLE_ACCURACY:.0%}, chance 50%)")
    print(
        "  longest answer share: "
        + ", ".join(f"{v} {s:.0%}" for v, s in report.longest_share.items())
        + f" (limit {MAX_LONGEST_SHARE:.0%} each)"
    )
    print(
        "  mean characters: "
        + ", ".join(f"{v} {m:.0f}" for v, m in report.mean_characters.items())
        + f" (within {MAX_VARIANT_MEAN_DRIFT:.0%} of correct)"
    )
    scale = feature_scale(cases)
    for a, b in PAIRS:
        if report.pairwise[f"{a}/{b}"] <= MAX_STYLE_ACCURACY:
            continue
        scores = tell_scores(cases, a, b)
        ranked = sorted(range(len(cases)), key=lambda i: -scores[i])[:shown]
        print(f"\nCases that follow the {a}/{b} tell most (score > 0 follows it):")
        for i in ranked:
            flags = "; ".join(case_style_flags(cases[i], scale))
            print(f"  {cases[i].id}: score {scores[i]:+.1f}" + (f"; {flags}" if flags else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
