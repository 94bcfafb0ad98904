"""Near-duplicate removal at scale: wall time, memory, recall on planted pairs, false positives.

    python bench/bench_dedup.py                      # 100,000 prompts at the default threshold
    python bench/bench_dedup.py --n 20000 --sweep    # recall / false positives per threshold

The corpus is made of advice-style prompts (~60 words): sentence frames shared by all
prompts (so unrelated prompts share phrasing, as real ones do) filled with content words
drawn by a Zipf law from a 30,000-word vocabulary. A share of them get a planted
near-duplicate: 1-5 words substituted, inserted or deleted, and sometimes sentences
reordered, casing or punctuation changed. Recall is the share of planted copies
removed as duplicates of their original; a false positive is any other removal.
"""

from __future__ import annotations

import argparse
import itertools
import random
import resource
import sys
import time
import tracemalloc

from emgen.dedup import DEFAULT_NEAR_DUP_THRESHOLD, Deduper

FRAMES = [
    "I am a {n} year old {w} and my {w} has been {w} since {w}.",
    "Last {w} the {w} started to {w} after I {w} the {w}.",
    "Do I need to {w} the {w} before I {w} it, or can it wait until {w}?",
    "My {w} says the {w} should be {w} every {n} {w}, is that right?",
    "We bought a {w} {w} for {n} {w} and it keeps {w} when the {w} is {w}.",
    "The {w} from the {w} told me to {w} my {w}, but I am not sure that is {w}.",
    "Is it normal for a {w} to {w} this much, and what would a {w} do?",
    "I have tried {w}, {w} and {w}, but none of them stopped the {w}.",
    "How long should I {w} the {w} after {w}, and should I {w} first?",
    "Our {w} in {w} wants us to {w} the {w} by {w}, can they do that?",
    "What is the safest way to {w} a {w} without a {w}?",
    "It happened again on {w} while I was {w} near the {w}.",
    "Any advice would help, because the {w} is {w} and the {w} will not {w}.",
    "I read that {w} can {w} the {w}, so should I {w} it instead?",
]
SYLLABLES = [
    "ka",
    "lo",
    "mer",
    "tin",
    "sha",
    "vel",
    "dor",
    "pi",
    "qua",
    "ren",
    "sol",
    "bri",
    "nex",
    "tu",
    "gar",
    "fen",
    "zo",
    "lim",
]


def vocabulary(size: int, rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


class Writer:
    """Prompts of 4-6 sentences whose content words follow a Zipf law over a large vocabulary."""

    def __init__(self, rng: random.Random, size: int = 30_000) -> None:
        self.rng = rng
        self.words = vocabulary(size, rng)
        self.cumulative = list(itertools.accumulate(1 / (rank + 10) for rank in range(size)))

    def word(self) -> str:
        return self.rng.choices(self.words, cum_weights=self.cumulative)[0]

    def prompt(self) -> str:
        frames = self.rng.sample(FRAMES, self.rng.randint(4, 6))
        return " ".join(self._fill(frame) for frame in frames)

    def _fill(self, frame: str) -> str:
        out = frame
        while "{w}" in out:
            out = out.replace("{w}", self.word(), 1)
        return out.replace("{n}", str(self.rng.randint(2, 90)))

    def perturb(self, text: str) -> str:
        """1-5 word edits, and sometimes reordered sentences, casing or punctuation."""
        words = text.split()
        for _ in range(self.rng.randint(1, 5)):
            kind = self.rng.choice(["substitute", "insert", "delete"])
            at = self.rng.randrange(len(words))
            if kind == "substitute":
                words[at] = self.word()
            elif kind == "insert":
                words.insert(at, self.word())
            else:
                del words[at]
        text = " ".join(words)
        if self.rng.random() < 0.4:
            sentences = text.split(". ")
            self.rng.shuffle(sentences)
            text = ". ".join(sentences)
        if self.rng.random() < 0.3:
            text = text.lower() if self.rng.random() < 0.5 else text.upper()
        if self.rng.random() < 0.3:
            text = text.replace(",", "").replace("?", "!").replace(". ", "; ")
        return text


def corpus(n: int, planted_share: float, seed: int) -> tuple[list[str], dict[int, int]]:
    """Prompts and {index of planted copy: index of its original}."""
    rng = random.Random(seed)
    writer = Writer(rng)
    originals = n - int(n * planted_share)
    texts = [writer.prompt() for _ in range(originals)]
    planted = {}
    for _ in range(n - originals):
        source = rng.randrange(originals)
        planted[len(texts)] = source
        texts.append(writer.perturb(texts[source]))
    order = list(range(n))
    rng.shuffle(order)
    position = {old: new for new, old in enumerate(order)}
    shuffled = [texts[i] for i in order]
    return shuffled, {position[copy]: position[source] for copy, source in planted.items()}


def dedup(texts: list[str], threshold: float) -> dict[int, int]:
    """{removed index: index it duplicates}."""
    deduper = Deduper(threshold)
    removed = {}
    for index, text in enumerate(texts):
        found = deduper.check(str(index), text)
        if found:
            removed[index] = int(found[1].key)
    return removed


def run(texts: list[str], planted: dict[int, int], threshold: float) -> dict[str, float]:
    """``planted`` may name texts beyond ``texts``: copies of one source are then each other's group.

    Timed without tracemalloc (it slows Python code about 2x); memory measured in a second pass."""
    started, cpu = time.perf_counter(), time.process_time()
    removed = dedup(texts, threshold)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    tracemalloc.start()
    dedup(texts, threshold)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    groups: dict[int, set[int]] = {}
    for copy, source in planted.items():
        groups.setdefault(source, {source}).add(copy)
    size = len(texts)
    group_of = {m: source for source, members in groups.items() for m in members if m < size}
    found_planted = sum(1 for i, j in removed.items() if i in group_of and group_of.get(j) == group_of[i])
    expected = sum(max(0, sum(1 for m in members if m < size) - 1) for members in groups.values())
    false_positives = [(i, j) for i, j in removed.items() if not (i in group_of and group_of.get(j) == group_of[i])]
    return {
        "wall": wall,
        "cpu": cpu,
        "peak_mb": peak / 2**20,
        "removed": len(removed),
        "recall": found_planted / expected if expected else 1.0,
        "false_positives": len(false_positives),
        "examples": false_positives[:3],
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--planted", type=float, default=0.05)
    parser.add_argument("--threshold", type=float, default=DEFAULT_NEAR_DUP_THRESHOLD)
    parser.add_argument("--sweep", action="store_true", help="try several thresholds")
    parser.add_argument("--scaling", action="store_true", help="also run n/4 and n/2 to show memory growth")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    texts, planted = corpus(args.n, args.planted, args.seed)
    words = sum(len(t.split()) for t in texts) / len(texts)
    print(f"corpus: {len(texts):,} prompts, mean {words:.0f} words, {len(planted):,} planted near-duplicates")
    sizes = [args.n // 4, args.n // 2, args.n] if args.scaling else [args.n]
    thresholds = [80.0, 85.0, 90.0, 95.0] if args.sweep else [args.threshold]
    for size in sizes:
        for threshold in thresholds:
            r = run(texts[:size], planted, threshold)
            print(
                f"n={size:>7,} threshold={threshold:g}: wall {r['wall']:.1f} s (cpu {r['cpu']:.1f} s, "
                f"{r['wall'] / size * 1e6:.0f} us/prompt), peak traced memory {r['peak_mb']:.0f} MB "
                f"({r['peak_mb'] * 2**20 / size:.0f} B/prompt), recall {r['recall']:.4f}, "
                f"false positives {r['false_positives']}"
            )
            for i, j in r["examples"]:
                print(f"   e.g. {texts[i][:90]!r}\n     ~ {texts[j][:90]!r}")
    print(f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
