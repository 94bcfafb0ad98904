import asyncio
import email.utils
import random
import time

import httpx2
import openai
import pytest

from emgen.llm.ratelimit import RateLimiter
from emgen.llm.retry import Backoff, describe, is_transient, rejects_format, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_requests_per_minute_are_spaced_after_a_one_second_burst():
    clock = Clock()
    limiter = RateLimiter(120, clock=clock)  # 2 a second
    waits = [limiter.reserve() for _ in range(6)]
    assert waits[:2] == [0.0, 0.0]
    assert waits[2:] == pytest.approx([0.5, 1.0, 1.5, 2.0])
    clock.now += 10
    assert limiter.reserve() == 0.0


def test_token_limits_charge_by_size_and_settle_on_actual_use():
    clock = Clock()
    limiter = RateLimiter(6000, clock=clock)  # 100 tokens a second
    assert limiter.reserve(100) == 0.0
    assert limiter.reserve(300) == pytest.approx(3.0)
    limiter.adjust(-300)  # the request used far fewer tokens than estimated
    assert limiter.reserve(100) == pytest.approx(1.0)


def test_the_limiter_really_waits():
    limiter = RateLimiter(600)  # 10 a second, burst of 10

    async def run() -> float:
        start = time.monotonic()
        for _ in range(13):
            await limiter.acquire()
        return time.monotonic() - start

    assert asyncio.run(run()) >= 0.25


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    backoff = Backoff(base=1.0, cap=8.0)
    rng = random.Random(0)
    for attempt, ceiling in [(0, 1), (1, 2), (2, 4), (3, 8), (6, 8)]:
        delays = [backoff.delay(attempt, rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1


def test_retry_after_is_honoured_whatever_its_form():
    assert retry_after(httpx2.Headers({"retry-after": "3"})) == 3.0
    assert retry_after(httpx2.Headers({"retry-after-ms": "250"})) == 0.25
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= retry_after(httpx2.Headers({"retry-after": date})) <= 31
    assert retry_after(httpx2.Headers({})) is None
    assert retry_after(None) is None
    assert Backoff().delay(0, random.Random(0), 5.0) >= 5.0


def _status(code: int, body: dict) -> openai.APIStatusError:
    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx2.Response(code, request=request, json=body)
    return openai.AsyncOpenAI(api_key="x", base_url="http://127.0.0.1/v1")._make_status_error_from_response(response)


def test_which_failures_are_retried():
    assert is_transient(_status(429, {"error": {"message": "slow down", "code": "rate_limit_exceeded"}}))
    assert is_transient(_status(500, {"error": {"message": "oops"}}))
    assert is_transient(_status(503, {"error": {"message": "busy"}}))
    assert not is_transient(
        _status(429, {"error": {"message": "You exceeded your quota", "code": "insufficient_quota"}})
    )
    for code in (400, 401, 403, 404, 422):
        assert not is_transient(_status(code, {"error": {"message": "no"}}))


def test_a_rejected_response_format_is_recognised():
    assert rejects_format(_status(400, {"error": {"message": "response_format json_schema is not supported"}}))
    assert rejects_format(_status(422, {"detail": "guided decoding backend failed on schema"}))
    assert not rejects_format(_status(400, {"error": {"message": "max_tokens is too large"}}))
    assert not rejects_format(_status(401, {"error": {"message": "bad json_schema key"}}))


def test_error_lines_never_show_a_key():
    error = _status(401, {"error": {"message": "Incorrect API key provided: sk-proj-abc123XYZ. Find yours at …"}})
    line = describe(error, secret="sk-proj-abc123XYZ")
    assert "abc123" not in line and line.startswith("HTTP 401: Incorrect API key provided: ***")
    other = describe(_status(401, {"error": {"message": "key sk-live-Zz9_8yy was revoked\nand more"}}))
    assert "Zz9" not in other and "\n" not in other
