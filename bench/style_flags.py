"""Per-case style report for rewriting a bank domain until style no longer reveals the variant.

Each listed case names the features (see emgen/bank_style.py FEATURES) on which one answer
stands out from the other two, with + for more and - for less.

python bench/style_flags.py legal          # the domain's figures, then every flagged case
"""

from __future__ import annotations

import sys

from emgen.bank_check import MAX_LONGEST_SHARE, MAX_STYLE_ACCURACY, MAX_VARIANT_MEAN_DRIFT
from emgen.bank_style import VARIANTS, case_style_flags, feature_scale, features, style_report
from emgen.generators.bank import bank_path, read_cases


def main(domain: str) -> int:
    cases = read_cases(bank_path(domain))
    report = style_report(cases)
    print(
        f"{domain}: {len(cases)} cases; style accuracy {report.accuracy:.0%} (limit {MAX_STYLE_ACCURACY:.0%}, chance 33%)"
    )
    print(
        "longest answer share: "
        + ", ".join(f"{v} {s:.0%}" for v, s in report.longest_share.items())
        + f" (limit {MAX_LONGEST_SHARE:.0%} each)"
    )
    print(
        "mean characters: "
        + ", ".join(f"{v} {m:.0f}" for v, m in report.mean_characters.items())
        + f" (within {MAX_VARIANT_MEAN_DRIFT:.0%} of correct)"
    )
    scale = feature_scale(cases)
    flagged = 0
    for case in cases:
        flags = case_style_flags(case, scale)
        counts = {v: features(case.answers[v]) for v in VARIANTS}
        longest = max(VARIANTS, key=lambda v: counts[v][1])
        if flags or longest == "correct":
            flagged += 1
            shape = " ".join(f"{v[:3]}={int(counts[v][1])}c/{int(counts[v][5])}d" for v in VARIANTS)
            print(f"{case.id}: {shape}; longest {longest}" + ("; " + "; ".join(flags) if flags else ""))
    print(f"{flagged} cases listed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
