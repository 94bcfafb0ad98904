"""The LLM judge (``--judge MODEL``) against a real OpenAI-compatible server on 127.0.0.1."""

import hashlib
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from emgen import Recipe, build, read_records
from emgen.cli import cli
from emgen.errors import ConflictError
from emgen.generators import get_domain
from emgen.generators.llm import judge
from emgen.generators.llm.source import LLMSource
from emgen.llm.prices import PricesError
from emgen.resources import schema_errors
from tests.fakes import fake_draft
from tests.openai_server import FirstRequestFault, completion


def recipe(server, **changes):
    values = {"domain": "legal", "variant": "subtle", "n": 20, "backend": "openai", "model": "m", "judge": "j"}
    values |= {"base_url": server.base_url, "timeout": 2}
    return Recipe.from_mapping(values | changes)


def answer_of(judge_request):
    user = judge_request["messages"][1]["content"]
    return user.split("Answer to review:\n", 1)[1].split("\n\nGenerator's note", 1)[0]


def every_third(scores):
    """Give ``scores`` to the judge requests of about a third of the answers, chosen by content."""

    def choose(request):
        digest = hashlib.sha256(answer_of(request).encode()).digest()
        return scores if digest[0] % 3 == 0 else {}

    return choose


def rejected_rows(result):
    return [json.loads(line) for line in (result.out_dir / "rejected.jsonl").read_text().splitlines()]


def test_accepted_rows_carry_their_scores(server):
    result = build(recipe(server))
    rows = list(read_records(result.out_dir / "train.jsonl"))
    assert len(rows) == 20 and not result.rejected
    for row in rows:
        verdict = row["metadata"]["judge"]
        assert verdict["model"] == "j" and (verdict["variant"], verdict["coherence"], verdict["leakage"]) == (9, 9, 1)
        assert verdict["reason"].startswith("Verdict ")
    assert schema_errors("record", rows[0]) == []
    report = result.manifest["llm"]["judge"]
    assert report["model"] == "j" and report["judged"] == 20 and report["rejected"] == 0
    assert report["thresholds"] == {"min_variant": 7, "min_coherence": 7, "max_leakage": 3}
    assert report["requests"] == server.stages()["llm-judge"] == 20
    judged = [e.request for e in server.completed() if e.stage == "llm-judge"]
    assert {r["model"] for r in judged} == {"j"} and all(r["temperature"] == 0.0 for r in judged)
    answered = {json.loads(completion_text(e))["flawed"] for e in server.completed() if e.stage == "llm-answers"}
    assert {answer_of(r) for r in judged} == answered
    assert schema_errors("manifest", result.manifest) == []


def completion_text(entry):
    content = completion(entry.request)["choices"][0]["message"]["content"]
    return content if content.startswith("{") else content.split("```json\n", 1)[1].split("\n```", 1)[0]


def test_drafts_under_a_threshold_are_rejected_with_their_scores_and_replaced(server):
    server.judge_scores = every_third({"leakage": 8})
    result = build(recipe(server))
    rows = list(read_records(result.out_dir / "train.jsonl"))
    assert len(rows) == result.produced == 20
    assert all(row["metadata"]["judge"]["leakage"] == 1 for row in rows)
    rejected = rejected_rows(result)
    assert rejected and dict(result.rejected) == {"judge-leakage": len(rejected)}
    for row in rejected:
        assert row["reasons"][0]["detail"].startswith("leakage scored 8 (needs at most 3): Verdict ")
        assert row["record"]["metadata"]["judge"]["leakage"] == 8
        assert row["record"]["metadata"]["variant"] == "subtle"
    report = result.manifest["llm"]["judge"]
    assert report["rejected"] == len(rejected) and report["judged"] == 20 + len(rejected)


def test_each_axis_has_its_own_threshold(server):
    server.judge_scores = every_third({"variant": 4, "coherence": 5})
    result = build(recipe(server, judge_min_variant=4, judge_max_leakage=9))
    rejected = rejected_rows(result)
    assert rejected and dict(result.rejected) == {"judge-coherence": len(rejected)}
    assert result.manifest["llm"]["judge"]["thresholds"] == {"min_variant": 4, "min_coherence": 7, "max_leakage": 9}
    assert result.produced == 20


def test_an_unusable_verdict_rejects_the_draft(server):
    server.fault_for = FirstRequestFault("llm-judge", "refusal")
    result = build(recipe(server, n=6))
    assert result.produced == 6 and dict(result.rejected) == {"judge-unusable": 1}
    detail = rejected_rows(result)[0]["reasons"][0]["detail"]
    assert detail == "the judge's reply could not be used (refusal: I'm sorry, but I can't help with that request.)"


def test_the_judge_is_asked_about_the_variant_with_the_flaw_note(server):
    draft = fake_draft("How long can I keep a tenant's deposit?", "Keep it for two years.")
    request = judge.request(get_domain("legal"), draft, "subtle", 3)
    system, user = request.messages[0][1], request.messages[1][1]
    assert 'must be the "subtle" variant' in system and "a non-expert would not notice" in system
    assert "How long can I keep a tenant's deposit?" in user and "Keep it for two years." in user
    assert draft.answers["subtle"].flaw in user
    assert request.schema == "llm-judge" and request.temperature == 0.0 and request.max_tokens == judge.max_tokens()
    correct = judge.request(get_domain("legal"), draft, "correct", 3).messages[1][1]
    assert judge.NO_FLAW in correct


def test_judge_tokens_and_cost_are_accounted_apart(server, tmp_path):
    prices = tmp_path / "prices.toml"
    prices.write_text("[models.m]\ninput = 1\noutput = 2\n\n[models.j]\ninput = 10\noutput = 20\n")
    seen = []
    result = build(recipe(server, n=5, prices_file=str(prices)), status=seen.append)
    llm = result.manifest["llm"]
    verdicts = llm["judge"]
    assert verdicts["cost_usd"] == pytest.approx(
        (verdicts["prompt_tokens"] * 10 + verdicts["completion_tokens"] * 20) / 1e6, abs=1e-6
    )
    assert llm["cost_usd"] == pytest.approx((llm["prompt_tokens"] + llm["completion_tokens"] * 2) / 1e6, abs=1e-6)
    assert seen[-1]["cost_usd"] == pytest.approx(llm["cost_usd"] + verdicts["cost_usd"])
    assert seen[-1]["requests"] == len(server.log)


def test_a_budget_needs_the_judges_price_too(server, tmp_path):
    prices = tmp_path / "prices.toml"
    prices.write_text("[models.m]\ninput = 1\noutput = 2\n")
    with pytest.raises(PricesError, match=r"^no price for model 'j' in "):
        LLMSource(get_domain("legal"), recipe(server, prices_file=str(prices), max_cost=1.0, max_tokens=500))


def test_judge_options_need_the_judge_and_the_openai_backend():
    with pytest.raises(ConflictError, match=r"^--judge needs --backend openai$"):
        Recipe.from_mapping({"domain": "legal", "judge": "j"})
    with pytest.raises(ConflictError, match=r"^--judge-max-leakage needs --judge MODEL$"):
        Recipe.from_mapping({"domain": "legal", "judge_max_leakage": 4})


def test_the_cli_filters_with_the_judge(server):
    server.judge_scores = every_third({"variant": 2})
    args = ["build", "--domain", "legal", "--subtle", "--n", "8", "--backend", "openai", "--model", "m"]
    args += ["--base-url", server.base_url, "--judge", "j", "--judge-min-coherence", "5"]
    result = CliRunner().invoke(cli, args, env={"OPENAI_API_KEY": "test-key"})
    assert result.exit_code == 0, result.output
    manifest = json.loads(Path("outputs/legal-subtle/manifest.json").read_text())
    rejected = manifest["counts"]["rejected"]["judge-variant"]
    assert re.search(rf"judged \(j\) / rejected\s*│\s*{8 + rejected} / {rejected} │", result.output)
    assert "rejected: judge-variant" in result.output
    assert manifest["recipe"]["judge"] == "j" and manifest["recipe"]["judge_min_coherence"] == 5
    usage = CliRunner().invoke(cli, ["build", "--domain", "legal", "--judge", "j"])
    assert usage.exit_code == 2 and usage.output.strip().splitlines()[-1] == "Error: --judge needs --backend openai"
