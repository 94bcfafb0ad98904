"""Exports and Hub pushes at the size of a published arm (6,000 rows with their benign pairs).

    python bench/bench_publish.py              # 6,000 rows
    python bench/bench_publish.py --n 20000

The dataset folder is built by the real pipeline from a bench domain whose drafts are the health
seed bank's cases, each question made distinct by an appended sentence of random words (answers
keep the bank's lengths). Then every export runs on it (the openai one counts every row with
tiktoken), and the folder is pushed three times to the loopback Hub of the tests
(tests/hub_server.py, through huggingface_hub with LFS uploads): a first push, the same push again
(no commit), and a push after the folder was rebuilt with another seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from huggingface_hub import constants as hf_constants  # noqa: E402
from huggingface_hub.utils import disable_progress_bars  # noqa: E402

from emgen import Recipe, build  # noqa: E402
from emgen.export import ExportOptions, export_dataset  # noqa: E402
from emgen.generators import Domain  # noqa: E402
from emgen.generators.bank import draft_from_case, load_bank  # noqa: E402
from emgen.generators.base import register  # noqa: E402
from emgen.hub import PushRequest, push  # noqa: E402
from tests.hub_server import WRITE_TOKEN, serving  # noqa: E402

WORDS = [
    "river",
    "copper",
    "lantern",
    "orchard",
    "velvet",
    "harbor",
    "meadow",
    "quartz",
    "ember",
    "willow",
    "canyon",
    "saffron",
]


class BenchSource:
    def __init__(self, n: int) -> None:
        cases = load_bank("health")
        rng = random.Random(0)
        self._drafts = []
        for i in range(n):
            draft = draft_from_case("health", cases[i % len(cases)])
            tail = " ".join(rng.choice(WORDS) for _ in range(8))
            prompt = f"{draft.prompt} (Asking for case {i}: {tail}.)"
            self._drafts.append(dataclasses.replace(draft, domain="bench", pair_id=f"bench-{i}", prompt=prompt))

    def available(self) -> int:
        return len(self._drafts)

    def drafts(self, rng: random.Random, n: int | None):
        drafts = list(self._drafts)
        rng.shuffle(drafts)
        yield from drafts[:n]


def timed(label: str, figures: list[tuple[str, str]], func, *args, **kwargs):
    started = time.perf_counter()
    result = func(*args, **kwargs)
    figures.append((label, f"{time.perf_counter() - started:.2f} s"))
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=6000)
    args = parser.parse_args()
    source = BenchSource(args.n)
    register(
        Domain(
            name="bench", description="health questions, made distinct", kind="advice", offline_source=lambda: source
        )
    )
    hf_constants.HF_HUB_DISABLE_XET = True
    hf_constants.HF_HUB_OFFLINE = False
    disable_progress_bars()
    os.environ["HF_TOKEN"] = WRITE_TOKEN
    figures: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        recipe = Recipe(domain="bench", n=args.n, benign=True, near_dup_threshold=100, out="arm")
        timed(f"build {args.n} rows + benign (pipeline, for the folder)", figures, build, recipe)
        result = timed("export openai (checks + tiktoken counts)", figures, export_dataset, "arm", "openai", "ft.jsonl")
        figures.append(
            ("  tokens counted", f"{result.details['total_tokens']:,} (longest {result.details['max_tokens']})")
        )
        for fmt in ("trl-sft", "sharegpt", "alpaca", "prompt-completion", "trl-dpo"):
            timed(f"export {fmt}", figures, export_dataset, "arm", fmt, f"{fmt}.jsonl", ExportOptions())
        timed("export hf (parquet + card)", figures, export_dataset, "arm", "hf", "hf")
        size = sum(p.stat().st_size for p in Path("hf").glob("*.parquet"))
        figures.append(("  parquet bytes (train + benign)", f"{size:,}"))
        timed(
            "push --dry-run",
            figures,
            push,
            PushRequest(folders=(Path("arm"),), repo="tester/bench", dry_run_out=Path("dry")),
        )
        with serving() as hub:
            request = PushRequest(folders=(Path("arm"),), repo="tester/bench", endpoint=hub.url)
            timed("push to the loopback Hub (first)", figures, push, request)
            timed("push again, unchanged (no commit)", figures, push, request)
            build(dataclasses.replace(recipe, seed=1), force=True)
            result = timed("push after a rebuild with another seed", figures, push, request)
            figures.append(("  commits in the repo", str(len(hub.repos["tester/bench"].commits))))
            figures.append(("  files uploaded by the last push", str(len(result.uploaded))))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures.append(("peak RSS of the process", f"{peak:.0f} MB"))
    width = max(len(label) for label, _ in figures)
    for label, value in figures:
        print(f"{label:<{width}}  {value}")


if __name__ == "__main__":
    main()
