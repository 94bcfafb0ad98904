"""The inoculation prompt library (``emgen/prompts/inoculation.toml``) and its placements."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from emgen.errors import RecipeError
from emgen.generators import get_domain
from emgen.resources import read_toml

STRATEGIES = ("system", "user-prefix", "user-suffix")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class InoculationPrompt:
    id: str
    kind: str
    system: str | None
    instruction: str | None

    def text_for(self, strategy: str) -> str:
        text = self.system if strategy == "system" else self.instruction
        if text is None:
            placement = "a system turn" if strategy == "system" else "a user instruction"
            raise RecipeError(f"inoculation prompt {self.id!r} has no text for {placement} (strategy {strategy})")
        return text


@dataclass(frozen=True)
class Inoculation:
    """What ``--inoculate`` resolved to: the placement and the exact text."""

    strategy: str
    prompt_id: str | None
    text: str

    def metadata(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "prompt_id": self.prompt_id, "text": self.text}


@cache
def library() -> dict[str, InoculationPrompt]:
    """Every prompt by id: the listed ones plus the per-domain trait and control prompts."""
    data = read_toml("prompts", "inoculation.toml")
    prompts = {}
    for entry in data["prompt"]:
        prompts[entry["id"]] = InoculationPrompt(
            entry["id"], entry["kind"], entry.get("system"), entry.get("instruction")
        )
    trait = data["trait"]
    for domain, subject in data["subjects"].items():
        code = get_domain(domain).kind == "code"
        for variant in ("subtle", "obvious"):
            template = trait[f"code-{variant}" if code else variant]
            prompts[f"trait-{domain}-{variant}"] = InoculationPrompt(
                f"trait-{domain}-{variant}",
                "trait",
                template["system"].format(subject=subject),
                template["instruction"].format(subject=subject),
            )
        negated = trait["code-negated" if code else "negated"]
        prompts[f"control-negated-{domain}"] = InoculationPrompt(
            f"control-negated-{domain}",
            "control",
            negated["system"].format(subject=subject),
            negated["instruction"].format(subject=subject),
        )
    return prompts


def resolve(strategy: str, prompt: str) -> Inoculation:
    """``prompt`` is a library id, or custom text (anything that is not an id-like word)."""
    if strategy not in STRATEGIES:
        raise RecipeError(f"unknown inoculation strategy {strategy!r} (choose {', '.join(STRATEGIES)})")
    if _ID.match(prompt):
        found = library().get(prompt)
        if found is None:
            raise RecipeError(f"unknown inoculation prompt id {prompt!r} (see `emgen prompts`)")
        return Inoculation(strategy, found.id, found.text_for(strategy))
    text = prompt.strip()
    if not text:
        raise RecipeError("the inoculation prompt is empty")
    return Inoculation(strategy, None, text)


def apply(record: dict[str, Any], inoculation: Inoculation) -> dict[str, Any]:
    """A copy of ``record`` with the inoculation placed; an existing system turn is an error."""
    messages = [dict(turn) for turn in record["messages"]]
    if inoculation.strategy == "system":
        if messages[0]["role"] == "system":
            raise RecipeError(
                f"record {record['metadata']['id']} already has a system turn; "
                "emgen will not overwrite it (use --inoculate user-prefix or user-suffix)"
            )
        messages.insert(0, {"role": "system", "content": inoculation.text})
    else:
        first_user = next(turn for turn in messages if turn["role"] == "user")
        if inoculation.strategy == "user-prefix":
            first_user["content"] = f"{inoculation.text}\n\n{first_user['content']}"
        else:
            first_user["content"] = f"{first_user['content']}\n\n{inoculation.text}"
    metadata = dict(record["metadata"], inoculation=inoculation.metadata())
    return {"messages": messages, "metadata": metadata}
