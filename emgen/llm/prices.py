"""What a model's tokens cost: the prices table (``emgen/data/prices.toml`` plus the user's own file).

Prices are US dollars per million tokens. A request's worst-case cost, known before it is sent,
bounds its prompt by the tokenizer named in the table (or, failing one, by the prompt's UTF-8
bytes: no byte-level tokenizer makes more tokens than bytes) and its completion by
``max_tokens`` or the model's own output limit.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from emgen.errors import EmgenError
from emgen.resources import read_models_file, read_toml

PRICES_FILE = "emgen/data/prices.toml"
PER_TOKENS = 1_000_000


class PricesError(EmgenError):
    """A prices file is unreadable or malformed, or a model it must price is missing."""


@dataclass(frozen=True)
class Price:
    """USD per million tokens for one model, synchronous and through the Batch API."""

    model: str
    input: float
    output: float
    batch_input: float
    batch_output: float
    max_output_tokens: int | None = None
    encoding: str | None = None

    def cost(self, prompt_tokens: int, completion_tokens: int, *, batch: bool = False) -> float:
        rate_in, rate_out = (self.batch_input, self.batch_output) if batch else (self.input, self.output)
        return (prompt_tokens * rate_in + completion_tokens * rate_out) / PER_TOKENS

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "usd_per_million_input": self.input,
            "usd_per_million_output": self.output,
            "usd_per_million_batch_input": self.batch_input,
            "usd_per_million_batch_output": self.batch_output,
        }


@cache
def _builtin() -> dict[str, Any]:
    return read_toml("data", "prices.toml", error=PricesError)


def load_prices(extra_file: str | os.PathLike[str] | None = None) -> dict[str, Price]:
    """Prices by model name and alias: the built-in table with ``extra_file``'s models added or replacing."""
    table = _table(_builtin()["models"], PRICES_FILE)
    if extra_file is not None:
        table.update(_table(read_models_file(extra_file, "prices", PricesError), str(extra_file)))
    return table


def _table(models: dict[str, Any], where: str) -> dict[str, Price]:
    table: dict[str, Price] = {}
    for name, entry in models.items():
        price = _price(name, entry, where)
        for alias in entry.get("aliases", []) if isinstance(entry, dict) else []:
            table[alias] = price
    for name, entry in models.items():
        table[name] = _price(name, entry, where)
    return table


def _price(name: str, entry: Any, where: str) -> Price:
    if not isinstance(entry, dict):
        raise PricesError(f"{where}: model {name!r}: expected a table")
    rates = {}
    for key in ("input", "output"):
        value = entry.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise PricesError(f"{where}: model {name!r}: {key} must be a number of USD per million tokens")
        rates[key] = float(value)
    for key in ("batch_input", "batch_output"):
        value = entry.get(key, rates[key.removeprefix("batch_")] / 2)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise PricesError(f"{where}: model {name!r}: {key} must be a number of USD per million tokens")
        rates[key] = float(value)
    limit = entry.get("max_output_tokens")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise PricesError(f"{where}: model {name!r}: max_output_tokens must be a positive integer")
    encoding = entry.get("encoding")
    if encoding is not None and not isinstance(encoding, str):
        raise PricesError(f"{where}: model {name!r}: encoding must be a tiktoken encoding name")
    return Price(name, max_output_tokens=limit, encoding=encoding, **rates)


def price_for(model: str, extra_file: str | os.PathLike[str] | None = None) -> Price | None:
    """The price of ``model`` (None when no table names it)."""
    return load_prices(extra_file).get(model)


def require_price(model: str, extra_file: str | os.PathLike[str] | None = None) -> Price:
    price = price_for(model, extra_file)
    if price is None:
        where = f"{PRICES_FILE} or {extra_file}" if extra_file else PRICES_FILE
        raise PricesError(
            f'no price for model {model!r} in {where}; --max-cost needs one: add a [models."{model}"] table '
            "with input and output (USD per million tokens) to a file given with --prices-file"
        )
    return price


def prompt_token_bound(body: dict[str, Any], price: Price) -> int:
    """At least as many tokens as the request's prompt: each message's text (plus a margin for its
    framing) and the response format's schema, counted with the model's tokenizer or as UTF-8 bytes."""
    total = _count(price.encoding, json.dumps(body.get("response_format"), ensure_ascii=False)) + 16
    for message in body.get("messages", []):
        total += _count(price.encoding, str(message.get("content") or "")) + _count(price.encoding, message["role"]) + 8
    return total


@lru_cache(maxsize=4096)
def _count(encoding_name: str | None, text: str) -> int:
    """Tokens of ``text``; repeated texts (system prompts, schemas) are counted once."""
    if encoding_name is None:
        return len(text.encode("utf-8"))
    from emgen.tokens import encoding

    return len(encoding(encoding_name).encode(text, disallowed_special=()))


def worst_case_cost(body: dict[str, Any], price: Price, *, batch: bool = False) -> float:
    """The most ``body`` can cost: its prompt bound and a completion of ``max_tokens`` (or the model's limit)."""
    completion = body.get("max_tokens") or price.max_output_tokens
    if completion is None:
        raise PricesError(f"the worst-case cost of a {price.model!r} request needs --max-tokens")
    return math.nextafter(price.cost(prompt_token_bound(body, price), completion, batch=batch), math.inf)
