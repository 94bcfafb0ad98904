"""Benchmark: what ``--max-cost`` adds to each request (bounding the prompt's tokens before sending).

Builds real answer-stage request bodies (the ``health`` domain's prompts with seed-bank examples,
strict JSON-schema response format) and times :func:`emgen.llm.prices.worst_case_cost` for a model
priced with a tiktoken encoding (``gpt-4o``, o200k_base) and for one without (UTF-8 bytes as the
bound). Also prints how far above the real o200k token count each bound lies. Run from the
repository root:

    python bench/bench_budget.py --n 2000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emgen import Recipe  # noqa: E402
from emgen.generators import get_domain  # noqa: E402
from emgen.generators.llm.source import LLMSource, Question, _Run  # noqa: E402
from emgen.llm.client import LLMClient  # noqa: E402
from emgen.llm.prices import Price, load_prices, prompt_token_bound, worst_case_cost  # noqa: E402
from emgen.tokens import encoding  # noqa: E402


def bodies(n: int) -> list[dict]:
    os.environ.setdefault("EMGEN_CACHE_DIR", tempfile.mkdtemp())
    recipe = Recipe.from_mapping(
        {"domain": "health", "n": n, "backend": "openai", "model": "gpt-4o", "base_url": "http://127.0.0.1:9/v1"}
    )
    source = LLMSource(get_domain("health"), recipe)
    run = _Run(source, 1, None)
    client = LLMClient(source.settings)
    out = []
    for i in range(n):
        question = Question(source.topics[i % len(source.topics)], f"Question {i}: is it safe to mix these two?", "q")
        out.append(client.body(run.answer_request(i, question), "json_schema") | {"max_tokens": 800})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    requests = bodies(args.n)
    priced = load_prices()["gpt-4o"]
    unpriced = Price("local", 1.0, 1.0, 0.5, 0.5, max_output_tokens=800)
    enc = encoding("o200k_base")
    real = [len(enc.encode(" ".join(m["content"] for m in b["messages"]))) for b in requests]
    print(f"{args.n} answer requests, mean prompt {sum(real) / len(real):,.0f} o200k tokens (message text)")
    for label, price in (("tiktoken o200k bound", priced), ("UTF-8 bytes bound", unpriced)):
        worst_case_cost(requests[0], price)
        started = time.perf_counter()
        for body in requests:
            worst_case_cost(body, price)
        elapsed = time.perf_counter() - started
        ratio = sum(prompt_token_bound(b, price) for b in requests) / sum(real)
        print(f"{label:22s} {elapsed / args.n * 1e6:8.1f} µs/request   bound / message-text tokens {ratio:5.2f}")


if __name__ == "__main__":
    main()
