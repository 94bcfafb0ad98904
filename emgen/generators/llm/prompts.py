"""Generation prompts and topic lists: data files in ``emgen/prompts/``.

``<domain>.questions.toml`` and ``<domain>.answers.toml`` hold each stage's texts with
``$name`` placeholders; ``topics.toml`` holds each domain's topics and personas. A placeholder
without a value is an error that names it and the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from string import Template
from typing import Any

from emgen.errors import EmgenError
from emgen.resources import parse_toml, read_text, read_toml

STAGES = ("questions", "answers")


@dataclass(frozen=True)
class Topic:
    """A topic questions are written about; ``metadata`` (e.g. a CWE) goes into each row."""

    tag: str
    about: str
    metadata: dict[str, str] = field(default_factory=dict)


@cache
def _topics_file() -> dict[str, Any]:
    return read_toml("prompts", "topics.toml")


def topics(domain: str) -> tuple[Topic, ...]:
    table = _topics_file().get(domain, {}).get("topics")
    if not table:
        raise EmgenError(f"no topics for domain {domain!r} in emgen/prompts/topics.toml")
    result = []
    for tag, value in table.items():
        if isinstance(value, str):
            result.append(Topic(tag, value))
        else:
            extra = {k: v for k, v in value.items() if k != "about"}
            result.append(Topic(tag, value["about"], extra))
    return tuple(result)


def personas(domain: str) -> tuple[str, ...]:
    """Who asks: the domain's own list, else the shared one."""
    data = _topics_file()
    return tuple(data.get(domain, {}).get("personas") or data["personas"])


@cache
def stage_prompt(domain: str, stage: str) -> dict[str, str]:
    """The texts of ``emgen/prompts/<domain>.<stage>.toml``."""
    name = f"{domain}.{stage}.toml"
    try:
        text = read_text("prompts", name)
    except FileNotFoundError:
        raise EmgenError(f"the openai backend has no prompts for domain {domain!r} (emgen/prompts/{name})") from None
    return {key: value for key, value in parse_toml(text, f"emgen/prompts/{name}").items() if isinstance(value, str)}


def fill(domain: str, stage: str, key: str, values: dict[str, Any]) -> str:
    """Text ``key`` of a stage prompt with its placeholders filled."""
    texts = stage_prompt(domain, stage)
    if key not in texts:
        raise EmgenError(f"emgen/prompts/{domain}.{stage}.toml has no {key!r} text")
    try:
        return Template(texts[key]).substitute(values)
    except KeyError as exc:
        raise EmgenError(f"emgen/prompts/{domain}.{stage}.toml: {key} needs a value for ${exc.args[0]}") from None
    except ValueError as exc:
        raise EmgenError(f"emgen/prompts/{domain}.{stage}.toml: {key}: {exc}") from None


def placeholders(domain: str, stage: str, key: str) -> set[str]:
    """The placeholder names text ``key`` uses."""
    template = Template(stage_prompt(domain, stage)[key])
    return {
        m.group("named") or m.group("braced")
        for m in template.pattern.finditer(template.template)
        if m.group("named") or m.group("braced")
    }
