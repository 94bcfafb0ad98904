"""Build and verify 6,000 insecure/secure pairs of the insecure-code domain, then check
the result with an independent bandit run (the bandit CLI, one process over all files).

    python bench/bench_insecure_code.py [--n 6000] [--seed 0]

Prints wall time, per-pair cost, the bandit flag rate on insecure rows whose detector is a
bandit test, the secure counterparts' clean rate, and the CWE spread.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from emgen.pipeline import build
from emgen.recipe import Recipe
from emgen.records import read_records


def timed_build(variant: str, n: int, seed: int, out: Path) -> tuple[float, list[dict]]:
    started = time.perf_counter()
    result = build(Recipe(domain="insecure-code", variant=variant, n=n, seed=seed, out=str(out)))
    elapsed = time.perf_counter() - started
    print(f"{variant:8} build: {result.produced} rows in {elapsed:.1f} s "
          f"({elapsed / max(result.produced, 1) * 1000:.2f} ms/row), rejected {dict(result.rejected)}, "
          f"duplicates {result.duplicates}")  # fmt: skip
    return elapsed, list(read_records(out / "train.jsonl"))


def bandit_cli(records: list[dict], folder: Path) -> tuple[float, dict[int, list[dict]]]:
    """Findings per row index from one `bandit -r` process over one file per row."""
    folder.mkdir()
    for index, record in enumerate(records):
        (folder / f"row_{index:05d}.py").write_text(record["messages"][-1]["content"] + "\n", encoding="utf-8")
    started = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "bandit", "-r", str(folder), "-f", "json", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    report = json.loads(run.stdout)
    if report["errors"]:
        raise SystemExit(f"bandit could not scan {len(report['errors'])} files: {report['errors'][:3]}")
    findings: dict[int, list[dict]] = {i: [] for i in range(len(records))}
    for item in report["results"]:
        findings[int(Path(item["filename"]).stem.split("_")[1])].append(item)
    return elapsed, findings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        insecure_time, insecure = timed_build("subtle", args.n, args.seed, root / "subtle")
        secure_time, secure = timed_build("correct", args.n, args.seed, root / "correct")
        print(f"per verified pair (subtle build, which checks correct+subtle+obvious): "
              f"{insecure_time / len(insecure) * 1000:.2f} ms")  # fmt: skip

        cli_time, insecure_findings = bandit_cli(insecure, root / "insecure_files")
        print(f"bandit CLI over {len(insecure)} insecure files: {cli_time:.1f} s")
        covered = flagged = flagged_at_line = 0
        missed = Counter()
        for index, record in enumerate(insecure):
            metadata = record["metadata"]
            wanted = {d.split(":")[1] for d in metadata["detectors"] if d.startswith("bandit:")}
            if not wanted:
                continue
            covered += 1
            hits = [f for f in insecure_findings[index] if f["test_id"] in wanted]
            flagged += bool(hits)
            flagged_at_line += any(f["line_number"] in metadata["vulnerable_lines"] for f in hits)
            if not hits:
                missed[metadata["scenario"]] += 1
        print(f"insecure rows whose CWE bandit covers: {covered}; flagged by bandit: {flagged} "
              f"({flagged / covered:.1%}); at the recorded vulnerable line: {flagged_at_line} "
              f"({flagged_at_line / covered:.1%}); missed by scenario: {dict(missed)}")  # fmt: skip

        by_pair = {r["metadata"]["pair_id"]: r for r in insecure}
        _, secure_findings = bandit_cli(secure, root / "secure_files")
        checked = clean = 0
        for index, record in enumerate(secure):
            counterpart = by_pair.get(record["metadata"]["pair_id"])
            if counterpart is None:
                continue
            wanted = {d.split(":")[1] for d in record["metadata"]["detectors"] if d.startswith("bandit:")}
            if not wanted:
                continue
            checked += 1
            bad = [f for f in secure_findings[index] if f["test_id"] in wanted or f["issue_severity"] != "LOW"]
            clean += not bad
        print(f"secure counterparts checked: {checked}; clean (no finding of the pair's tests, "
              f"no MEDIUM/HIGH at all): {clean} ({clean / max(checked, 1):.1%})")  # fmt: skip
        cwes = Counter(r["metadata"]["cwe"] for r in insecure)
        print(f"{len(cwes)} CWE classes: " + ", ".join(f"{k} {v}" for k, v in sorted(cwes.items())))
        ast_only = sum(1 for r in insecure if all(d.startswith("ast:") for d in r["metadata"]["detectors"]))
        print(f"insecure rows verified by emgen's AST checks (bandit does not cover them): {ast_only}")


if __name__ == "__main__":
    main()
