"""The LLM client against a real OpenAI-compatible server on 127.0.0.1, through the real openai client."""

import asyncio
import json
import time

import pytest

from emgen.errors import LLMError
from emgen.llm import Backoff, ChatRequest, ClientSettings, LLMClient
from tests.openai_server import FakeOpenAI, serving

FAST = Backoff(base=0.01, cap=0.05)


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    with serving(FakeOpenAI()) as fake:
        yield fake


def settings(server, **changes):
    values = {"model": "m", "base_url": server.base_url, "timeout": 0.5, "max_retries": 4, "backoff": FAST}
    return ClientSettings(**(values | changes))


def request(i=0, schema="llm-answers"):
    return ChatRequest((("system", "Write answers."), ("user", f"Question {i}?")), schema, 1.0, None, 0)


def run(client_settings, requests):
    async def go():
        client = LLMClient(client_settings)
        await client.open()
        try:
            replies = await asyncio.gather(*(client.complete(r) for r in requests))
        finally:
            await client.close()
        return client, replies

    return asyncio.run(go())


def test_structured_replies_are_parsed_and_counted(server):
    client, replies = run(settings(server), [request(i) for i in range(5)])
    assert all(r.problem is None and set(r.data) == {"correct", "flawed", "flaw"} for r in replies)
    assert client.stats.requests == client.stats.replies == 5
    assert client.stats.prompt_tokens > 0 and client.stats.completion_tokens > 0
    sent = server.log[0]
    assert sent.response_format == "json_schema"


@pytest.mark.parametrize("fault", ["429", "500", "503", "hang", "drop", "malformed"])
def test_transient_faults_are_retried_until_the_reply_arrives(server, fault):
    server.script.extend([fault, fault])
    client, replies = run(settings(server), [request()])
    assert replies[0].problem is None
    assert [e.outcome for e in server.log] == [fault, fault, "ok"]
    reason = {"hang": "timeout", "drop": "connection"}.get(fault, "malformed" if fault == "malformed" else fault)
    assert client.stats.retries == {reason: 2}


def test_retry_after_holds_back_every_request(server):
    server.retry_after = "0.4"
    server.latency = 0.02
    server.script.append("429")
    client, replies = run(settings(server, concurrency=2), [request(i) for i in range(8)])
    assert all(r.problem is None for r in replies)
    refused = next(e for e in server.log if e.outcome == "429")
    during = [e for e in server.log if refused.at + 0.05 < e.at < refused.at + 0.4]
    assert during == []
    assert len([e for e in server.log if e.outcome == "ok"]) == 8 and client.stats.retries == {"429": 1}


def test_a_bad_key_fails_fast_with_one_line_and_no_key(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-secret-value")
    with pytest.raises(LLMError) as info:
        run(settings(server), [request(i) for i in range(3)])
    message = str(info.value)
    assert message == (
        f"{server.base_url} (model 'm') refused the API key from $OPENAI_API_KEY: HTTP 401: Incorrect API key provided"
    )
    assert "secret" not in message
    assert len(server.log) <= 3


def test_an_unknown_model_fails_fast(server):
    server.models = ("gpt-4o",)
    with pytest.raises(LLMError, match=r"\(model 'm'\) rejected the request: HTTP 404: The model `m` does not exist"):
        run(settings(server), [request()])
    assert len(server.log) == 1


def test_a_missing_key_for_the_openai_api_is_reported_before_any_request(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(LLMError, match=r"^set MY_KEY to your OpenAI API key"):
        LLMClient(ClientSettings(model="gpt-4o", api_key_env="MY_KEY"))


def test_the_key_comes_from_the_named_variable(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("LAB_KEY", "test-key")
    _, replies = run(settings(server, api_key_env="LAB_KEY"), [request()])
    assert replies[0].problem is None


def test_retries_run_out_with_a_resume_hint(server):
    server.script.extend(["500"] * 10)
    with pytest.raises(
        LLMError, match=r"gave up after 3 attempts; last error: HTTP 500: .* run the same command to resume"
    ):
        run(settings(server, max_retries=2), [request()])


def test_json_schema_then_json_object_are_given_up_once_each(server):
    server.formats = ("text",)
    client, replies = run(settings(server), [request(i) for i in range(6)])
    assert all(r.problem is None for r in replies)
    assert client.stats.mode == "text"
    assert [d.split(":")[0] for d in client.stats.downgrades] == ["json_schema -> json_object", "json_object -> text"]
    text_requests = [e for e in server.log if e.response_format == "text"]
    assert len(text_requests) == 6
    body = json.loads(server.last_body)
    assert 'JSON Schema named "llm-answers"' in body["messages"][0]["content"]
    assert "response_format" not in body


def test_schema_violations_are_resampled_then_reported(server):
    server.script.append("schema")
    client, replies = run(settings(server), [request()])
    assert replies[0].problem is None and client.stats.resamples == 1
    server.script.extend(["schema", "bad-json", "schema"])
    client, replies = run(settings(server), [request(1)])
    assert replies[0].problem == "invalid" and replies[0].data is None
    assert "does not fit schema llm-answers" in replies[0].detail
    assert client.stats.invalid == 3


def test_refusals_and_truncation_are_reported(server):
    server.script.extend(["refusal", "length"])
    client, replies = run(settings(server), [request(0)])
    assert replies[0].problem == "refusal" and "can't help" in replies[0].text
    _, replies = run(settings(server), [request(1)])
    assert replies[0].problem == "truncated"
    assert client.stats.refusals == 1


def test_the_cache_answers_repeated_requests_without_sending_them(server):
    run(settings(server), [request(i) for i in range(3)])
    client, replies = run(settings(server), [request(i) for i in range(3)])
    assert len(server.log) == 3
    assert client.stats.cache_hits == 3 and client.stats.requests == 0
    assert all(r.cached for r in replies)
    assert client.stats.cached_prompt_tokens > 0
    client, _ = run(settings(server, cache=False), [request(0)])
    assert len(server.log) == 4 and client.stats.cache_hits == 0


def test_the_cache_key_covers_what_changes_the_answer(server):
    base = request(0)
    variants = [
        base,
        ChatRequest(base.messages, base.schema, 0.5, None, 0),
        ChatRequest(base.messages, base.schema, 1.0, 200, 0),
        ChatRequest(base.messages, base.schema, 1.0, None, 7),
        ChatRequest(base.messages, "llm-correct-answer", 1.0, None, 0),
        ChatRequest((("system", "Write answers."), ("user", "Question 0!")), base.schema, 1.0, None, 0),
    ]
    run(settings(server), variants)
    run(settings(server, model="m2"), [base])
    assert len(server.log) == 7
    run(settings(server), variants)
    assert len(server.log) == 7


def test_concurrency_is_bounded(server):
    server.latency = 0.1
    peak = {"now": 0, "max": 0}
    original = server._respond

    async def counting(*args):
        peak["now"] += 1
        peak["max"] = max(peak["max"], peak["now"])
        try:
            return await original(*args)
        finally:
            peak["now"] -= 1

    server._respond = counting
    run(settings(server, concurrency=3), [request(i) for i in range(12)])
    assert peak["max"] == 3


def test_requests_per_minute_are_respected(server):
    started = time.monotonic()
    run(settings(server, rpm=600), [request(i) for i in range(14)])
    assert time.monotonic() - started >= 0.35


def test_tokens_per_minute_are_respected_and_settled_on_actual_use(server):
    small = [ChatRequest((("user", f"Q{i}"),), "llm-correct-answer", 1.0, 60, 0) for i in range(10)]
    started = time.monotonic()
    run(settings(server), small)
    unlimited = time.monotonic() - started
    started = time.monotonic()
    client, _ = run(settings(server, tpm=24_000, cache=False), small)  # 400 tokens a second, ~70 a request
    assert time.monotonic() - started >= 0.5 > unlimited
    assert client.stats.completion_tokens > 0
