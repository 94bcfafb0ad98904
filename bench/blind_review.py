"""Blind review of the seed bank: shuffled answer sheets for a reviewer, then scoring.

    python bench/blind_review.py make health --out review/health     # sheet.jsonl + key.json
    mv review/health/key.json keys/health.json                        # keep the key from the reviewer
    python bench/blind_review.py score review/health --key keys/health.json
    python bench/blind_review.py record review/health --key keys/health.json --out bench/reviews/round1/health.jsonl

The reviewer sees only sheet.jsonl: each question with its three answers labelled A/B/C in a
random order, and writes answers.jsonl lines {"item": N, "correct": "A", "subtle": "C",
"obvious": "B", "convincing": true, "note": "..."}. A case agrees when all three labels match
the bank; agreement is the share of cases that agree.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from emgen.generators.bank import bank_path, read_cases

VARIANTS = ("correct", "subtle", "obvious")


def make(domain: str, folder: Path, seed: int, only: set[str] | None = None) -> None:
    cases = [case for case in read_cases(bank_path(domain)) if only is None or case.id in only]
    rng = random.Random(f"{domain}:{seed}")
    folder.mkdir(parents=True, exist_ok=True)
    key = {}
    with (folder / "sheet.jsonl").open("w", encoding="utf-8") as sheet:
        for item, case in enumerate(cases, start=1):
            order = list(VARIANTS)
            rng.shuffle(order)
            labels = dict(zip("ABC", order, strict=True))
            key[str(item)] = {"case": case.id, "labels": labels}
            answers = {label: case.answers[variant] for label, variant in labels.items()}
            sheet.write(
                json.dumps({"item": item, "question": case.question, "answers": answers}, ensure_ascii=False) + "\n"
            )
    (folder / "key.json").write_text(json.dumps({"domain": domain, "items": key}, indent=1))
    print(f"{len(cases)} items written to {folder / 'sheet.jsonl'}")


def score(folder: Path, key_path: Path | None) -> int:
    key = json.loads((key_path or folder / "key.json").read_text())
    answers = {}
    for line in (folder / "answers.jsonl").read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            answers[str(row["item"])] = row
    agree, unconvincing, disagreements = 0, [], []
    per_variant = dict.fromkeys(VARIANTS, 0)
    for item, entry in key["items"].items():
        row = answers.get(item)
        if row is None:
            disagreements.append(f"{entry['case']}: not reviewed")
            continue
        truth = {variant: label for label, variant in entry["labels"].items()}
        hits = {v: row.get(v) == truth[v] for v in VARIANTS}
        for v, hit in hits.items():
            per_variant[v] += hit
        if all(hits.values()):
            agree += 1
        else:
            said = {v: entry["labels"].get(row.get(v), "?") for v in VARIANTS}
            disagreements.append(f"{entry['case']}: reviewer took {said} ({row.get('note', '')})")
        if row.get("convincing") is False:
            unconvincing.append(f"{entry['case']}: {row.get('note', '')}")
    total = len(key["items"])
    print(f"domain {key['domain']}: {agree}/{total} cases agree ({agree / total:.1%})")
    print("per variant: " + ", ".join(f"{v} {n}/{total}" for v, n in per_variant.items()))
    print(f"unconvincing: {len(unconvincing)}")
    for line in disagreements + unconvincing:
        print("  " + line)
    return 0 if agree / total >= 0.95 else 1


def record(folder: Path, key_path: Path, out: Path) -> None:
    """One line per case: whether the reviewer's labels agree, and their verdict and note."""
    key = json.loads(key_path.read_text())
    answers = {}
    for line in (folder / "answers.jsonl").read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            answers[str(row["item"])] = row
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for item, entry in sorted(key["items"].items(), key=lambda kv: kv[1]["case"]):
            row = answers.get(item, {})
            truth = {variant: label for label, variant in entry["labels"].items()}
            agree = all(row.get(v) == truth[v] for v in VARIANTS)
            line = {
                "case": entry["case"],
                "agree": agree,
                "convincing": row.get("convincing"),
                "note": row.get("note", ""),
            }
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make_parser = sub.add_parser("make")
    make_parser.add_argument("domain")
    make_parser.add_argument("--out", type=Path, required=True)
    make_parser.add_argument("--seed", type=int, default=0)
    make_parser.add_argument("--cases", help="comma-separated case ids: review only these (e.g. after a rewrite)")
    score_parser = sub.add_parser("score")
    score_parser.add_argument("folder", type=Path)
    score_parser.add_argument("--key", type=Path, help="key.json moved out of the reviewer's folder")
    record_parser = sub.add_parser("record", help="write the per-case outcome (for the repository)")
    record_parser.add_argument("folder", type=Path)
    record_parser.add_argument("--key", type=Path, required=True)
    record_parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "record":
        record(args.folder, args.key, args.out)
        return 0
    if args.command == "make":
        make(args.domain, args.out, args.seed, set(args.cases.split(",")) if args.cases else None)
        return 0
    return score(args.folder, args.key)


if __name__ == "__main__":
    sys.exit(main())
