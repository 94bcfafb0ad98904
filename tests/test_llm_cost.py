"""Token and cost accounting per model, and the ``--max-cost`` budget, against a real server on 127.0.0.1."""

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from emgen import Recipe, build, read_records
from emgen.cli import cli, llm_status
from emgen.errors import ConflictError
from emgen.llm.budget import Budget, BudgetExceeded
from emgen.llm.prices import PricesError, load_prices, price_for, prompt_token_bound, worst_case_cost
from emgen.resources import schema_errors
from tests.openai_server import completion

PRICES = """
[models.m]
input = 1.0
output = 4.0

[models."gpt-4o-2024-08-06"]
aliases = ["gpt-4o"]
input = 5.0
output = 20.0
"""


@pytest.fixture
def prices_file(tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text(PRICES)
    return path


def recipe(server, prices_file, **changes):
    values = {"domain": "legal", "variant": "obvious", "n": 30, "backend": "openai", "model": "m"}
    values |= {"base_url": server.base_url, "timeout": 2, "prices_file": str(prices_file), "max_tokens": 1500}
    return Recipe.from_mapping(values | changes)


def usage_cost(server, rate_in=1.0, rate_out=4.0):
    """What the completed requests cost by the usage the server reported."""
    total = 0.0
    for entry in server.completed():
        usage = completion(entry.request)["usage"]
        total += (usage["prompt_tokens"] * rate_in + usage["completion_tokens"] * rate_out) / 1e6
    return total


def test_the_built_in_table_prices_openai_models_by_name_and_alias():
    prices = load_prices()
    assert prices["gpt-4o"] is prices["gpt-4o-2024-08-06"] or prices["gpt-4o"] == prices["gpt-4o-2024-08-06"]
    assert prices["gpt-4o-mini"].cost(1_000_000, 1_000_000) == pytest.approx(0.75)
    assert prices["gpt-4o-mini"].cost(1_000_000, 1_000_000, batch=True) == pytest.approx(0.375)
    assert price_for("llama3") is None


def test_a_users_prices_file_adds_and_replaces_models(prices_file):
    prices = load_prices(prices_file)
    assert prices["m"].input == 1.0 and prices["m"].batch_output == 2.0
    assert prices["gpt-4o"].input == 5.0 and prices["gpt-4o-mini"].input == 0.15


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[models.x]\ninput = 1\n", "model 'x': output must be a number of USD per million tokens"),
        ("[models.x]\ninput = 1\noutput = -2\n", "model 'x': output must be a number of USD per million tokens"),
        ("title = 'no models'\n", "no [models.NAME] tables"),
        ("[models.x\n", "not valid TOML"),
    ],
)
def test_a_malformed_prices_file_is_one_line(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(PricesError, match=r"^" + str(path).replace("\\", "\\\\") + ": ") as info:
        load_prices(path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_the_worst_case_bounds_the_real_token_count():
    price = load_prices()["gpt-4o"]
    text = "How long should I wait before driving after two beers? " * 20
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": text}], "max_tokens": 100}
    from emgen.tokens import encoding

    assert prompt_token_bound(body, price) >= len(encoding("o200k_base").encode(text))
    assert worst_case_cost(body, price) >= price.cost(prompt_token_bound(body, price), 100)
    unknown = load_prices()["gpt-4o"].__class__("x", 1.0, 1.0, 0.5, 0.5)
    assert prompt_token_bound(body, unknown) >= len(text.encode())
    with pytest.raises(PricesError, match="needs --max-tokens"):
        worst_case_cost({"messages": body["messages"]}, unknown)


def test_a_build_accounts_tokens_and_cost(server, prices_file):
    seen = []
    result = build(recipe(server, prices_file, n=10), status=seen.append)
    llm = result.manifest["llm"]
    assert schema_errors("manifest", result.manifest) == []
    expected = (llm["prompt_tokens"] * 1.0 + llm["completion_tokens"] * 4.0) / 1e6
    assert llm["cost_usd"] == pytest.approx(expected, abs=1e-6) and llm["cost_usd"] > 0
    assert llm["cost_usd"] == pytest.approx(usage_cost(server), abs=1e-6)
    assert llm["price"]["usd_per_million_output"] == 4.0 and llm["budget"] is None
    assert seen[-1]["cost_usd"] == pytest.approx(llm["cost_usd"])
    assert llm_status(seen[-1]).endswith(f"· ${seen[-1]['cost_usd']:,.4f}")


def test_an_unpriced_model_is_accounted_in_tokens_only(server):
    result = build(recipe(server, prices_file=None, n=5).replace(prices_file=None))
    assert result.manifest["llm"]["cost_usd"] is None and result.manifest["llm"]["prompt_tokens"] > 0


def test_the_budget_stops_before_it_is_exceeded_and_keeps_what_was_made(server, prices_file):
    """One request at a time: each was sent only when what was spent plus its worst case fit the budget."""
    limit = 0.04
    result = build(recipe(server, prices_file, n=30, max_cost=limit, concurrency=1))
    budget = result.manifest["llm"]["budget"]
    assert budget["stopped"] is True
    price = load_prices(prices_file)["m"]
    spent = 0.0
    for entry in server.log:
        assert spent + worst_case_cost(entry.request, price) <= limit
        usage = completion(entry.request)["usage"]
        spent += price.cost(usage["prompt_tokens"], usage["completion_tokens"])
    assert budget["spent_usd"] == pytest.approx(spent, abs=1e-6) and spent <= limit
    rows = list(read_records(result.out_dir / "train.jsonl"))
    assert 0 < len(rows) == result.produced < 30
    answered = sum(1 for entry in server.completed() if entry.stage == "llm-answers")
    assert len(rows) == answered
    assert schema_errors("manifest", result.manifest) == []


def test_concurrent_requests_stay_within_the_budget_together(server, prices_file):
    limit = 0.05
    result = build(recipe(server, prices_file, n=60, max_cost=limit, concurrency=16))
    assert result.manifest["llm"]["budget"]["stopped"] is True
    assert 0 < usage_cost(server) <= limit
    assert result.manifest["llm"]["cost_usd"] == pytest.approx(usage_cost(server), abs=1e-6)
    answered = sum(1 for entry in server.completed() if entry.stage == "llm-answers")
    assert result.produced == answered > 0


def test_a_budget_too_small_for_one_request_sends_nothing(server, prices_file):
    result = build(recipe(server, prices_file, n=5, max_cost=0.0001))
    assert server.log == [] and result.produced == 0
    assert result.manifest["llm"]["budget"]["stopped"] is True
    assert (result.out_dir / "train.jsonl").read_text() == ""


def test_a_budget_needs_a_price_and_a_completion_limit(server, prices_file):
    with pytest.raises(PricesError, match=r"^no price for model 'm' in emgen/data/prices.toml; --max-cost needs one"):
        build(recipe(server, prices_file, max_cost=1.0).replace(prices_file=None))
    no_limit = prices_file.parent / "nolimit.toml"
    no_limit.write_text("[models.m]\ninput = 1\noutput = 1\n")
    with pytest.raises(ConflictError, match=r"^--max-cost needs --max-tokens for model 'm'"):
        build(recipe(server, no_limit, max_cost=1.0, max_tokens=None))
    with pytest.raises(ConflictError, match=r"^--max-cost needs --backend openai$"):
        Recipe.from_mapping({"domain": "legal", "max_cost": 1.0})
    assert server.log == []


def test_the_cli_shows_cost_and_the_budget_stop(server, prices_file):
    args = ["build", "--domain", "legal", "--obvious", "--n", "30", "--backend", "openai", "--model", "m"]
    args += ["--base-url", server.base_url, "--prices-file", str(prices_file), "--max-tokens", "1500"]
    result = CliRunner().invoke(cli, [*args, "--max-cost", "0.04"], env={"OPENAI_API_KEY": "test-key"})
    assert result.exit_code == 0, result.output
    assert "LLM cost (USD)" in result.output
    assert "Stopped at --max-cost $0.04 (spent $0.0" in result.output and "of 30 rows written." in result.output
    manifest = json.loads(Path("outputs/legal-obvious/manifest.json").read_text())
    assert manifest["recipe"]["max_cost"] == 0.04 and manifest["llm"]["budget"]["spent_usd"] <= 0.04


def test_the_budget_waits_for_outstanding_requests_then_stops():
    async def scenario():
        budget = Budget(1.0)
        await budget.reserve(0.6)
        waiter = asyncio.ensure_future(budget.reserve(0.6))
        await asyncio.sleep(0)
        assert not waiter.done() and budget.waiting == 1
        budget.settle(0.6, 0.3)
        await waiter
        assert budget.committed == pytest.approx(0.9)
        budget.settle(0.6, None)
        assert budget.held == pytest.approx(0.6)
        with pytest.raises(BudgetExceeded, match=r"more than the \$0.1000 left of --max-cost \$1$"):
            await budget.reserve(0.2)
        assert budget.exhausted
        with pytest.raises(BudgetExceeded):
            await budget.reserve(0.01)

    asyncio.run(scenario())
