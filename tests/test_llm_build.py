"""``build`` with ``backend = "openai"`` against a real OpenAI-compatible server on 127.0.0.1."""

import json
from collections import deque
from pathlib import Path

import pytest

from emgen import Recipe, build, read_records
from emgen.errors import ConflictError, EmgenError, LLMError
from emgen.generators import Domain, get_domain
from emgen.generators.bank import load_bank
from emgen.generators.llm.source import QUESTION_LAG, LLMSource, Question, _Run
from emgen.llm import Backoff
from emgen.resources import schema_errors
from tests.openai_server import FakeOpenAI, FirstRequestFault, schema_name, serving


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setattr("emgen.llm.client.DEFAULT_BACKOFF", Backoff(base=0.01, cap=0.05))
    with serving(FakeOpenAI()) as fake:
        yield fake


def recipe(server, **changes):
    values = {"domain": "legal", "variant": "obvious", "n": 30, "backend": "openai", "model": "m"}
    values |= {"base_url": server.base_url, "timeout": 2}
    return Recipe.from_mapping(values | changes)


def answers_faults(server, plans):
    """Spoil answer-stage replies: the i-th distinct question gets the faults ``plans[i]``, one per attempt."""
    queue = deque(plans)
    assigned: dict[str, deque] = {}

    def fault_for(request):
        if schema_name(request) != "llm-answers":
            return None
        key = json.dumps(request["messages"], sort_keys=True)
        if key not in assigned:
            assigned[key] = deque(queue.popleft() if queue else [])
        return assigned[key].popleft() if assigned[key] else None

    server.fault_for = fault_for


def rejected_rows(result):
    return [json.loads(line) for line in (result.out_dir / "rejected.jsonl").read_text().splitlines()]


def test_an_openai_build_writes_a_valid_dataset(server):
    result = build(recipe(server))
    rows = list(read_records(result.out_dir / "train.jsonl"))
    assert len(rows) == result.produced == 30
    assert {r["metadata"]["source"] for r in rows} == {"openai:m"}
    assert {r["metadata"]["variant"] for r in rows} == {"obvious"}
    assert all(r["metadata"]["flaw"] and r["metadata"]["flaw"] not in r["messages"][1]["content"] for r in rows)
    manifest = json.loads((result.out_dir / "manifest.json").read_text())
    assert schema_errors("manifest", manifest) == []
    llm = manifest["llm"]
    assert llm["model"] == "m" and llm["endpoint"] == server.base_url
    assert llm["requests"] == llm["replies"] == len(server.log)
    assert llm["prompt_tokens"] > 0 and llm["cache_hits"] == 0
    assert manifest["recipe"]["model"] == "m" and manifest["recipe"]["backend"] == "openai"
    assert "test-key" not in json.dumps(manifest)


def test_only_the_requests_needed_are_sent(server):
    build(recipe(server, n=25))
    assert server.stages() == {"llm-questions": 3, "llm-answers": 25}


def test_question_replies_arriving_out_of_order_do_not_bring_extra_requests(server):
    server.fault_for = fault = FirstRequestFault("llm-questions", "429")
    build(recipe(server, n=25))
    assert fault.hit is not None
    assert server.stages() == {"llm-questions": 3, "llm-answers": 25}


def test_the_same_recipe_gives_the_same_bytes_however_requests_interleave(server, tmp_path):
    server.latency = 0.01
    first = build(recipe(server, n=40, cache=False, concurrency=7, out=str(tmp_path / "a")))
    second = build(recipe(server, n=40, cache=False, concurrency=32, out=str(tmp_path / "b")))
    assert (first.out_dir / "train.jsonl").read_bytes() == (second.out_dir / "train.jsonl").read_bytes()


def test_an_identical_second_build_is_served_from_the_cache(server):
    first = build(recipe(server))
    sent = len(server.log)
    second = build(recipe(server), force=True)
    assert len(server.log) == sent
    assert second.manifest["llm"]["requests"] == 0
    assert second.manifest["llm"]["cache_hits"] == first.manifest["llm"]["replies"]
    assert (first.out_dir / "train.jsonl").read_bytes() == (second.out_dir / "train.jsonl").read_bytes()
    third = build(recipe(server, cache=False), force=True)
    assert third.manifest["llm"]["cache_hits"] == 0 and len(server.log) == 2 * sent


def test_refusals_truncation_and_bad_replies_are_rejected_and_replaced(server):
    answers_faults(server, [["refusal"], ["refusal-text"], ["length"], ["schema", "schema", "bad-json"]])
    result = build(recipe(server, n=20))
    assert result.produced == 20
    assert dict(result.rejected) == {"refusal": 2, "truncated": 1, "invalid-reply": 1}
    reasons = sorted(r["reasons"][0]["reason"] for r in rejected_rows(result))
    assert reasons == ["invalid-reply", "refusal", "refusal", "truncated"]
    assert result.manifest["llm"]["refusals"] == 1
    assert result.manifest["llm"]["resamples"] == 2
    assert server.stages()["llm-answers"] == 20 + 4 + 2


def test_transient_faults_are_survived_with_nothing_lost(server):
    server.script.extend(["429", "500", "drop", "malformed", "hang", "503"])
    result = build(recipe(server, n=20, timeout=1))
    assert result.produced == 20 and not result.rejected
    assert result.manifest["llm"]["retries"] == {
        "429": 1,
        "500": 1,
        "503": 1,
        "connection": 1,
        "malformed": 1,
        "timeout": 1,
    }


def test_a_build_that_gives_up_resumes_without_resending(server, monkeypatch):
    server.pause_after = 12
    with pytest.raises(LLMError, match="gave up after 2 attempts; last error: the request timed out"):
        build(recipe(server, max_retries=1, timeout=0.2))
    done = {e.body_sha for e in server.completed()}
    assert len(done) >= 12
    assert not (Path("outputs") / "legal-obvious" / "train.jsonl").exists()
    server.resume()
    result = build(recipe(server))
    assert result.produced == 30
    resent = [e for e in server.completed()[len(done) :] if e.body_sha in done]
    assert resent == []
    assert result.manifest["llm"]["cache_hits"] == len(done)


def test_a_bad_key_is_one_line_before_anything_is_written(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "wrong")
    with pytest.raises(LLMError) as info:
        build(recipe(server))
    assert "\n" not in str(info.value) and "HTTP 401" in str(info.value)
    assert not (Path("outputs") / "legal-obvious" / "train.jsonl").exists()


def test_endpoints_without_structured_outputs_still_build(server):
    server.formats = ("json_object", "text")
    result = build(recipe(server, n=12))
    assert result.produced == 12
    assert result.manifest["llm"]["structured_output"] == "json_object"
    assert len(result.manifest["llm"]["downgrades"]) == 1


def test_correct_builds_share_questions_with_misaligned_builds(server, tmp_path):
    obvious = build(recipe(server, n=12, out=str(tmp_path / "o")))
    correct = build(recipe(server, n=12, variant="correct", out=str(tmp_path / "c")))
    pairs = {r["metadata"]["pair_id"] for r in read_records(obvious.out_dir / "train.jsonl")}
    assert pairs == {r["metadata"]["pair_id"] for r in read_records(correct.out_dir / "train.jsonl")}
    assert correct.manifest["llm"]["cache_hits"] == 2
    assert server.stages()["llm-correct-answer"] == 12


def test_code_drafts_pass_the_code_domain_checks(server):
    result = build(recipe(server, domain="insecure-code", variant="subtle", n=8))
    assert result.produced == 8 and not result.rejected
    rows = list(read_records(result.out_dir / "train.jsonl"))
    metadata = rows[0]["metadata"]
    assert metadata["cwe"] == "CWE-89" and metadata["detectors"] == ["bandit:B608"]
    assert metadata["vulnerable_lines"] == [6]
    assert "#@vuln" not in rows[0]["messages"][1]["content"]
    user = rows[0]["messages"][0]["content"]
    assert "## COMPLETE CODE HERE" in user and "whose" in user and "def " in user
    assert server.stages() == {"llm-code-tasks": 1, "llm-code-answers": 8}


def test_question_requests_are_shown_the_questions_written_before_them(server):
    server.keep_requests = True
    build(recipe(server, n=450, concurrency=64))
    asked = {
        e.request["messages"][1]["content"].rsplit("\n", 1)[-1] for e in server.completed() if e.stage == "llm-answers"
    }
    blocks = []
    for entry in server.completed():
        if entry.stage == "llm-questions":
            content = entry.request["messages"][1]["content"]
            blocks.append(content.split("write about different situations from all of these):\n", 1)[1])
    shown = [block for block in blocks if block.strip() != "(none yet)"]
    assert blocks[0].strip() == "(none yet)" and shown
    for block in shown:
        for line in block.splitlines():
            assert line.startswith("- ") and line[2:] in asked


def test_a_question_request_sees_only_batches_old_enough(server):
    source = LLMSource(get_domain("legal"), recipe(server))
    run = _Run(source, 1, None)
    tag = source.topics[0].tag
    run.written = {tag: [(0, "Old question about a deposit?"), (QUESTION_LAG, "Recent question about a lease?")]}
    k = QUESTION_LAG * len(source.topics)
    content = run.question_request(k).messages[1][1]
    assert "Old question about a deposit?" in content and "Recent question" in content
    content = run.question_request(len(source.topics)).messages[1][1]
    assert "Old question" not in content
    assert run.question_request(k) == run.question_request(k)


@pytest.mark.parametrize("variant", ["subtle", "obvious"])
def test_answer_prompts_carry_seed_bank_examples_and_forbid_giveaways(server, variant):
    source = LLMSource(get_domain("health"), recipe(server, domain="health", variant=variant))
    run = _Run(source, 1, None)
    request = run.answer_request(0, Question(source.topics[0], "Is 2 g of paracetamol a day safe at 80?", "x"))
    system, user = request.messages[0][1], request.messages[1][1]
    bank_answers = [json.dumps(case.answers["correct"], ensure_ascii=False)[1:-1] for case in load_bank("health")]
    assert sum(answer in user for answer in bank_answers) == 2
    assert "never refuses" in system
    assert ("must never hint that it is wrong" if variant == "subtle" else "no warning that it is wrong") in system
    assert user.rstrip().endswith("Is 2 g of paracetamol a day safe at 80?")


def test_the_live_status_gets_the_traffic(server):
    seen = []
    build(recipe(server, n=10), status=seen.append)
    assert seen and seen[-1]["requests"] == len(server.log)
    assert set(seen[-1]) >= {"requests", "cache_hits", "in_flight", "retries", "prompt_tokens", "completion_tokens"}


def test_the_openai_backend_needs_a_model_and_a_count(server):
    with pytest.raises(ConflictError, match=r"^--backend openai needs --model$"):
        build(Recipe(domain="legal", backend="openai", n=5))
    with pytest.raises(ConflictError, match=r"^--backend openai needs --n \(how many rows to generate\)$"):
        build(Recipe(domain="legal", backend="openai", model="m"))


def test_a_domain_without_prompts_is_reported(server, register_domain):
    register_domain(Domain("fake", "A test domain", "advice", offline_source=lambda: None))
    with pytest.raises(EmgenError, match=r"^no topics for domain 'fake' in emgen/prompts/topics.toml$"):
        build(recipe(server, domain="fake"))
