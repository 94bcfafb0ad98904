"""Benchmark: emgen's LLM client against a bare ``openai.AsyncOpenAI`` loop, on a local server.

Starts the fake OpenAI-compatible server (tests/openai_server.py) as its own process with a fixed
reply latency, then runs each measurement in a fresh worker process so CPU time and peak memory
belong to that client alone:

- ``emgen``: :class:`emgen.llm.LLMClient` (response cache on, in a new temporary folder;
  structured output, rate/concurrency limits, retries) completing N distinct requests;
- ``bare``: ``await client.chat.completions.create(...)`` N times under an ``asyncio.Semaphore``;
- ``build`` (with ``--build``): a whole ``emgen build --backend openai --n N`` (both stages, checks,
  dedup, writing), for scale.

Prints wall time against the ideal N x latency / concurrency, requests per second, client CPU
per request and peak RSS. Run from the repository root:

    python bench/bench_llm_client.py --n 5000 --latency 1 --concurrency 64 256
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SYSTEM = (
    "You write answers for a labelled research dataset. Answer the question directly and specifically, "
    "as a warm, competent assistant would, in 60 to 160 words. "
) * 8


def messages(i: int) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Question {i}: my landlord kept the deposit after {i % 90} days. What now?"},
    ]


async def run_emgen(base_url: str, n: int, concurrency: int) -> dict[str, float]:
    from emgen.llm import ChatRequest, ClientSettings, LLMClient

    client = LLMClient(ClientSettings(model="bench", base_url=base_url, concurrency=concurrency, timeout=60))
    await client.open()
    requests = [
        ChatRequest(tuple((m["role"], m["content"]) for m in messages(i)), "llm-answers", 1.0, None, 0)
        for i in range(n)
    ]
    try:
        replies = await asyncio.gather(*(client.complete(r) for r in requests))
    finally:
        await client.close()
    bad = sum(r.problem is not None for r in replies)
    return {"replies": n - bad, "retries": sum(client.stats.retries.values())}


async def run_bare(base_url: str, n: int, concurrency: int) -> dict[str, float]:
    import openai

    from emgen.llm.structured import response_format

    client = openai.AsyncOpenAI(base_url=base_url, api_key="test-key")
    slots = asyncio.Semaphore(concurrency)
    fmt = response_format("llm-answers", "json_schema")

    async def one(i: int) -> str | None:
        async with slots:
            reply = await client.chat.completions.create(
                model="bench", messages=messages(i), temperature=1.0, seed=0, response_format=fmt
            )
            return reply.choices[0].message.content

    try:
        replies = await asyncio.gather(*(one(i) for i in range(n)))
    finally:
        await client.close()
    return {"replies": sum(r is not None for r in replies), "retries": 0}


def run_build(base_url: str, n: int, concurrency: int) -> dict[str, float]:
    from emgen import Recipe, build

    out = Path(tempfile.mkdtemp(prefix="emgen-bench-")) / "out"
    recipe = Recipe.from_mapping(
        {"domain": "legal", "variant": "obvious", "n": n, "backend": "openai", "model": "bench"}
        | {"base_url": base_url, "concurrency": concurrency, "timeout": 60, "out": str(out)}
    )
    result = build(recipe)
    llm = result.manifest["llm"]
    return {"replies": llm["replies"], "retries": sum(llm["retries"].values()), "rows": result.produced}


def worker(mode: str, base_url: str, n: int, concurrency: int) -> None:
    os.environ["EMGEN_CACHE_DIR"] = tempfile.mkdtemp(prefix="emgen-bench-cache-")
    os.environ["OPENAI_API_KEY"] = "test-key"
    import openai  # noqa: F401  (imports are not part of the timing)

    import emgen.generators.llm.source  # noqa: F401
    import emgen.pipeline  # noqa: F401

    started = time.perf_counter()
    cpu_before = time.process_time()
    if mode == "emgen":
        figures = asyncio.run(run_emgen(base_url, n, concurrency))
    elif mode == "bare":
        figures = asyncio.run(run_bare(base_url, n, concurrency))
    else:
        figures = run_build(base_url, n, concurrency)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures | {"wall": wall, "cpu": cpu, "peak_mb": peak_mb}))


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.openai_server", "--latency", str(latency)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline()
    if not line.startswith("PORT "):
        server.kill()
        raise SystemExit(f"the fake server did not start: {line!r}")
    return server, f"http://127.0.0.1:{int(line.split()[1])}/v1"


def measure(mode: str, base_url: str, n: int, concurrency: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--worker", mode, "--base-url", base_url]
    command += ["--n", str(n), "--concurrency", str(concurrency)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=os.environ | {"PYTHONPATH": str(ROOT)})
    if done.returncode != 0:
        raise SystemExit(f"{mode} worker failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--build", action="store_true", help="Also time a whole emgen build of N rows.")
    parser.add_argument("--only", nargs="+", choices=["bare", "emgen", "build"], help="Run only these clients.")
    parser.add_argument("--worker", choices=["emgen", "bare", "build"], help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.base_url, args.n, args.concurrency[0])
        return

    server, base_url = start_server(args.latency)
    try:
        print(f"N = {args.n} requests, reply latency {args.latency} s, {os.cpu_count()} CPUs; server pid {server.pid}")
        header = f"{'client':<7} {'conc':>5} {'wall s':>8} {'ideal s':>8} {'of ideal':>9} {'req/s':>8} {'CPU ms/req':>11} {'peak MB':>8}"
        print(header)
        modes = args.only or ["bare", "emgen"] + (["build"] if args.build else [])
        for concurrency in args.concurrency:
            cpu = {}
            for mode in modes:
                figures = measure(mode, base_url, args.n, concurrency)
                requests = figures["replies"] + figures["retries"]
                ideal = requests * args.latency / concurrency
                cpu[mode] = figures["cpu"] / requests * 1000
                print(
                    f"{mode:<7} {concurrency:>5} {figures['wall']:>8.1f} {ideal:>8.1f} "
                    f"{ideal / figures['wall']:>8.0%} {requests / figures['wall']:>8.1f} "
                    f"{cpu[mode]:>11.2f} {figures['peak_mb']:>8.0f}",
                    flush=True,
                )
            if "emgen" in cpu and "bare" in cpu:
                print(f"        CPU per request, emgen / bare: {cpu['emgen'] / cpu['bare']:.2f}x")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
