"""An OpenAI-compatible chat client for dataset generation.

Bounded concurrency, request and token rate limits, retries with backoff that honour
Retry-After, a persistent response cache and structured outputs with an automatic step down
(``json_schema`` → ``json_object`` → text) when an endpoint rejects a mode. Optionally a shared
budget that every request reserves its worst-case cost from before it is sent (``--max-cost``),
and the Batch API instead of one HTTP request per reply (``--batch``). Replies are read
from the raw HTTP body: one ``json.loads`` per reply, no response models built.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai

from emgen.errors import LLMError
from emgen.llm import retry
from emgen.llm.batch import DEFAULT_POLL_SECONDS, Batcher, BatchState, LineResult
from emgen.llm.budget import Budget
from emgen.llm.cache import ResponseCache, request_key
from emgen.llm.prices import Price, worst_case_cost
from emgen.llm.ratelimit import RateLimiter
from emgen.llm.stats import LLMStats
from emgen.llm.structured import MODES, next_mode, parse_reply, response_format, schema_instruction

OPENAI_BASE_URL = "https://api.openai.com/v1"
CACHE_FORMAT = 1
DEFAULT_COMPLETION_TOKENS = 600
DEFAULT_BACKOFF = retry.Backoff()
CONNECTIONS_PER_CLIENT = 32


def _default_backoff() -> retry.Backoff:
    return DEFAULT_BACKOFF


@dataclass(frozen=True)
class ClientSettings:
    """How to reach the endpoint and how hard to push it. Nothing here changes a reply."""

    model: str
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 32
    rpm: int | None = None
    tpm: int | None = None
    timeout: float = 120.0
    max_retries: int = 8
    cache: bool = True
    resamples: int = 2
    backoff: retry.Backoff = field(default_factory=_default_backoff)
    batch_poll: float = DEFAULT_POLL_SECONDS

    @property
    def endpoint(self) -> str:
        return (self.base_url or OPENAI_BASE_URL).rstrip("/")


@dataclass(frozen=True)
class ChatRequest:
    """One generation request; ``schema`` names the reply's schema in ``emgen/schemas``."""

    messages: tuple[tuple[str, str], ...]
    schema: str
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None


@dataclass(frozen=True)
class Reply:
    """A reply: ``data`` fits the schema unless ``problem`` says why not (refusal, truncated, invalid)."""

    data: Any
    text: str
    problem: str | None = None
    detail: str = ""
    cached: bool = False


class _FormatRejected(Exception):
    def __init__(self, mode: str, error: Exception) -> None:
        super().__init__(mode)
        self.mode = mode
        self.error = error


class LLMClient:
    """Use inside one event loop: ``await client.open()`` … ``await client.close()``."""

    def __init__(
        self,
        settings: ClientSettings,
        *,
        seed: int = 0,
        price: Price | None = None,
        budget: Budget | None = None,
        batch_state: BatchState | None = None,
    ) -> None:
        """With ``batch_state`` every request that misses the cache goes through the Batch API (see
        :mod:`emgen.llm.batch`); the caller flushes :attr:`batcher` when nothing else can progress."""
        self.settings = settings
        self.batch_state = batch_state
        self.batcher: Batcher | None = None
        self.stats = LLMStats(priced=price is not None)
        self.price = price
        self.budget = budget
        self.mode = MODES[0]
        self._rng = random.Random(f"backoff:{seed}")
        self._key = api_key(settings)
        self._cache = ResponseCache() if settings.cache else None
        self._rpm = RateLimiter(settings.rpm) if settings.rpm else None
        self._tpm = RateLimiter(settings.tpm) if settings.tpm else None
        self._cooldown_until = 0.0
        self._completion_estimate = float(DEFAULT_COMPLETION_TOKENS)
        self._clients: list[openai.AsyncOpenAI] = []
        self._turn = 0
        self._slots: asyncio.Semaphore | None = None

    async def open(self) -> None:
        """Open the HTTP clients: one per CONNECTIONS_PER_CLIENT requests in flight.

        The connection pool scans all of its connections for every request, which at a few
        hundred connections costs more CPU than the rest of the request (see bench/RESULTS.md);
        small pools used in turn keep that cost flat.
        """
        shards = -(-self.settings.concurrency // CONNECTIONS_PER_CLIENT)
        per_shard = -(-self.settings.concurrency // shards)
        for _ in range(shards):
            limits = httpx2.Limits(max_connections=None, max_keepalive_connections=per_shard)
            self._clients.append(
                openai.AsyncOpenAI(
                    api_key=self._key or "EMPTY",
                    base_url=self.settings.endpoint,
                    max_retries=0,
                    timeout=self.settings.timeout,
                    http_client=openai.DefaultAsyncHttpxClient(limits=limits, timeout=self.settings.timeout),
                )
            )
        self._slots = asyncio.Semaphore(self.settings.concurrency)
        if self.batch_state is not None:
            self.batcher = Batcher(
                self._clients[0],
                self.settings.model,
                self.batch_state,
                self._store_batched,
                poll_seconds=self.settings.batch_poll,
                max_retries=self.settings.max_retries,
                backoff=self.settings.backoff,
                secret=self._key,
            )

    async def close(self) -> None:
        for client in self._clients:
            await client.close()
        self._clients = []
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    async def complete(self, request: ChatRequest) -> Reply:
        """The reply to ``request``, re-sampled (up to ``resamples`` times) while it does not fit its schema."""
        reply = await self._complete_sample(request, 0)
        for sample in range(1, self.settings.resamples + 1):
            if reply.problem != "invalid":
                break
            self.stats.resamples += 1
            reply = await self._complete_sample(request, sample)
        return reply

    async def _complete_sample(self, request: ChatRequest, sample: int) -> Reply:
        while True:
            mode = self.mode
            body = self.body(request, mode)
            key = request_key(
                {"format": CACHE_FORMAT, "endpoint": self.settings.endpoint, "body": body, "sample": sample}
            )
            if self._cache is not None:
                hit = self._cache.get(key)
                if hit is not None:
                    self.stats.cache_hits += 1
                    return self._read(json.loads(hit), request.schema, cached=True)
            if self.batcher is not None:
                text, payload = await self._send_batched(body, key)
                return self._read(payload, request.schema, cached=False)
            try:
                text, payload = await self._send(body, mode)
            except _FormatRejected as rejected:
                self._step_down(rejected)
                continue
            if self._cache is not None:
                usage = _usage(payload)
                self._cache.put(key, self.settings.model, json.dumps(body, ensure_ascii=False), text, *usage)
            return self._read(payload, request.schema, cached=False)

    def body(self, request: ChatRequest, mode: str) -> dict[str, Any]:
        """The request body for ``mode``; in the weaker modes the prompt carries the schema."""
        messages = [{"role": role, "content": content} for role, content in request.messages]
        if mode != "json_schema":
            instruction = schema_instruction(request.schema)
            if messages and messages[0]["role"] == "system":
                messages[0] = {"role": "system", "content": messages[0]["content"] + "\n\n" + instruction}
            else:
                messages.insert(0, {"role": "system", "content": instruction})
        body: dict[str, Any] = {"model": self.settings.model, "messages": messages}
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.seed is not None:
            body["seed"] = request.seed
        fmt = response_format(request.schema, mode)
        if fmt is not None:
            body["response_format"] = fmt
        return body

    async def _send(self, body: dict[str, Any], mode: str) -> tuple[str, dict[str, Any]]:
        """POST ``body`` until it succeeds, fails for good, or runs out of retries."""
        assert self._clients and self._slots is not None, "call open() first"
        estimate = self._token_estimate(body)
        worst = self._worst_case(body)
        attempt = 0
        while True:
            await self._wait_cooldown()
            if self._rpm is not None:
                await self._rpm.acquire()
            if self._tpm is not None:
                await self._tpm.acquire(estimate)
            error: Exception
            headers: Any = None
            async with self._slots:
                await self._wait_cooldown()
                if self.budget is not None:
                    await self.budget.reserve(worst)
                spent: float | None = None
                self.stats.requests += 1
                self.stats.in_flight += 1
                self._turn = (self._turn + 1) % len(self._clients)
                try:
                    response = await self._clients[self._turn].post(
                        "/chat/completions", body=body, cast_to=httpx2.Response
                    )
                    text = response.text
                    payload = _completion(text)
                except openai.APIStatusError as exc:
                    error, headers = exc, exc.response.headers
                    spent = 0.0
                except openai.APIConnectionError as exc:
                    error = exc
                except ValueError as exc:
                    error = exc
                else:
                    spent = self._settle(payload, estimate)
                    return text, payload
                finally:
                    self.stats.in_flight -= 1
                    if self.budget is not None:
                        self.budget.settle(worst, spent)
            if retry.rejects_format(error) and mode != MODES[-1]:
                raise _FormatRejected(mode, error)
            if not (isinstance(error, ValueError) or retry.is_transient(error)):
                raise LLMError(self._fatal(error)) from None
            if attempt >= self.settings.max_retries:
                raise LLMError(
                    f"{self.settings.endpoint}: gave up after {attempt + 1} attempts; last error: "
                    f"{retry.describe(error, self._key)}. Completed replies are cached: run the same command to resume"
                ) from None
            wait = self.settings.backoff.delay(attempt, self._rng, retry.retry_after(headers))
            if isinstance(error, openai.RateLimitError):
                self._cooldown_until = max(self._cooldown_until, time.monotonic() + wait)
            self.stats.retries[_reason(error)] += 1
            attempt += 1
            await asyncio.sleep(wait)

    async def _send_batched(self, body: dict[str, Any], key: str) -> tuple[str, dict[str, Any]]:
        """Hand ``body`` to the batcher until a batch runs it, or it fails for good."""
        assert self.batcher is not None
        worst = worst_case_cost(body, self.price, batch=True) if self.budget and self.price else 0.0
        attempt = 0
        while True:
            if self.budget is not None:
                await self.budget.reserve(worst)
            spent: float | None = None
            self.stats.requests += 1
            try:
                result = await self.batcher.submit(key, body)
                spent = 0.0
                if result.payload is not None:
                    spent = self._settle(result.payload, 0, batch=True)
                    return json.dumps(result.payload, ensure_ascii=False), result.payload
            finally:
                if self.budget is not None:
                    self.budget.settle(worst, spent)
            if not _retry_line(result):
                where = f"{self.settings.endpoint} (model {self.settings.model!r})"
                raise LLMError(f"{where} rejected a batched request: HTTP {result.status}: {result.message}")
            if attempt >= self.settings.max_retries:
                raise LLMError(
                    f"{self.settings.endpoint}: a batched request failed {attempt + 1} times; last: "
                    f"{result.code or result.status}: {result.message}. Run the same command to resume"
                )
            self.stats.retries[_line_reason(result)] += 1
            attempt += 1

    def _store_batched(self, key: str, body: dict[str, Any], payload: dict[str, Any]) -> None:
        if self._cache is not None:
            text = json.dumps(payload, ensure_ascii=False)
            self._cache.put(key, self.settings.model, json.dumps(body, ensure_ascii=False), text, *_usage(payload))

    async def _wait_cooldown(self) -> None:
        """After a 429 every request waits out the endpoint's Retry-After, not just the one refused."""
        while (delay := self._cooldown_until - time.monotonic()) > 0:
            await asyncio.sleep(delay)

    def _token_estimate(self, body: dict[str, Any]) -> int:
        if self._tpm is None:
            return 0
        prompt = sum(len(m["content"]) for m in body["messages"]) // 4 + 8 * len(body["messages"])
        completion = body.get("max_tokens") or self._completion_estimate
        return int(prompt + completion)

    def _worst_case(self, body: dict[str, Any]) -> float:
        """The most this request can cost (0 without a budget to keep)."""
        if self.budget is None or self.price is None:
            return 0.0
        return worst_case_cost(body, self.price)

    def _settle(self, payload: dict[str, Any], estimate: int, *, batch: bool = False) -> float:
        """Count a reply's tokens; returns what it cost (0 for an unpriced model)."""
        prompt, completion = _usage(payload)
        cost = self.price.cost(prompt, completion, batch=batch) if self.price is not None else 0.0
        self.stats.replies += 1
        self.stats.prompt_tokens += prompt
        self.stats.completion_tokens += completion
        self.stats.cost_usd += cost
        if completion:
            self._completion_estimate += 0.1 * (completion - self._completion_estimate)
        if self._tpm is not None and (prompt or completion):
            self._tpm.adjust(prompt + completion - estimate)
        return cost

    def _step_down(self, rejected: _FormatRejected) -> None:
        """Switch the whole run to the next structured-output mode, once per mode."""
        if self.mode != rejected.mode:
            return
        lower = next_mode(rejected.mode)
        assert lower is not None
        self.mode = self.stats.mode = lower
        self.stats.downgrades.append(f"{rejected.mode} -> {lower}: {retry.describe(rejected.error, self._key)}")

    def _read(self, payload: dict[str, Any], schema: str, *, cached: bool) -> Reply:
        choice = payload["choices"][0]
        message = choice.get("message") or {}
        content = message.get("content") or ""
        finish = choice.get("finish_reason")
        if cached:
            prompt, completion = _usage(payload)
            self.stats.cached_prompt_tokens += prompt
            self.stats.cached_completion_tokens += completion
        refusal = message.get("refusal")
        if refusal or finish == "content_filter":
            self.stats.refusals += 1
            return Reply(None, refusal or content or "(refused)", "refusal", refusal or "content filter", cached)
        data, why = parse_reply(content, schema)
        if finish == "length":
            self.stats.truncated += 1
            return Reply(data, content, "truncated", "the model stopped at its token limit", cached)
        if data is None:
            self.stats.invalid += 1
            return Reply(None, content, "invalid", why or "", cached)
        return Reply(data, content, None, "", cached)

    def _fatal(self, error: Exception) -> str:
        described = retry.describe(error, self._key)
        where = f"{self.settings.endpoint} (model {self.settings.model!r})"
        if isinstance(error, openai.APIStatusError) and error.status_code in (401, 403):
            source = (
                f"${self.settings.api_key_env}" if self._key else f"no key (${self.settings.api_key_env} is not set)"
            )
            return f"{where} refused the API key from {source}: {described}"
        return f"{where} rejected the request: {described}"


def api_key(settings: ClientSettings) -> str:
    """The key from the environment; required for the OpenAI API, optional for a local server."""
    key = os.environ.get(settings.api_key_env) or ""
    if not key and settings.base_url is None:
        raise LLMError(
            f"set {settings.api_key_env} to your OpenAI API key (or name another variable with --api-key-env)"
        )
    return key


def _completion(text: str) -> dict[str, Any]:
    """The parsed chat.completion body; ValueError for anything that is not one."""
    payload = json.loads(text)
    choices = payload.get("choices") if isinstance(payload, dict) else None
    if not choices or not isinstance(choices[0], dict):
        raise ValueError("the reply is not a chat completion")
    return payload


def _usage(payload: dict[str, Any]) -> tuple[int, int]:
    usage = payload.get("usage") or {}
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


def _retry_line(result: LineResult) -> bool:
    """A batch line worth another batch: never run (expired, cancelled), unreadable, or a transient status."""
    return result.status in (None, 200) or result.status in retry.RETRY_STATUSES or result.status >= 500


def _line_reason(result: LineResult) -> str:
    if result.status == 200:
        return "malformed"
    return str(result.status) if result.status is not None else result.code or "not run"


def _reason(error: Exception) -> str:
    if isinstance(error, openai.APIStatusError):
        return str(error.status_code)
    if isinstance(error, openai.APITimeoutError):
        return "timeout"
    if isinstance(error, openai.APIConnectionError):
        return "connection"
    return "malformed"
