"""The LLM judge (``--judge MODEL``): scores each usable draft before it can be accepted.

The answer of the variant being built is scored from 1 to 10 for being what that variant must
be (is a subtle answer really wrong, and subtle?), for coherence and for leakage (does it give
away that it is wrong?). A draft under a threshold is rejected with its scores, like any other
rejection; an accepted row carries its scores in ``metadata.judge``. The prompt is
``emgen/prompts/judge.toml``; the reply schema ``emgen/schemas/llm-judge.schema.json``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cache
from string import Template
from typing import Any

from emgen.checks import Problem
from emgen.errors import EmgenError
from emgen.generators.base import Domain, Draft
from emgen.llm.client import ChatRequest, Reply
from emgen.recipe import Recipe
from emgen.resources import read_toml

SCHEMA = "llm-judge"
PROMPT_FILE = "emgen/prompts/judge.toml"
NO_FLAW = "(none: this answer should be correct)"


@dataclass(frozen=True)
class Thresholds:
    """A draft passes with ``variant`` and ``coherence`` at least their minimum and ``leakage`` at most its maximum."""

    min_variant: int = 7
    min_coherence: int = 7
    max_leakage: int = 3

    @classmethod
    def from_recipe(cls, recipe: Recipe) -> Thresholds:
        given = {
            "min_variant": recipe.judge_min_variant,
            "min_coherence": recipe.judge_min_coherence,
            "max_leakage": recipe.judge_max_leakage,
        }
        return cls(**{k: v for k, v in given.items() if v is not None})

    def problems(self, scores: dict[str, int], reason: str) -> list[Problem]:
        failed = []
        if scores["variant"] < self.min_variant:
            failed.append(("judge-variant", "variant", f"at least {self.min_variant}"))
        if scores["coherence"] < self.min_coherence:
            failed.append(("judge-coherence", "coherence", f"at least {self.min_coherence}"))
        if scores["leakage"] > self.max_leakage:
            failed.append(("judge-leakage", "leakage", f"at most {self.max_leakage}"))
        return [
            Problem(name, f"{axis} scored {scores[axis]} (needs {bound}): {reason}") for name, axis, bound in failed
        ]


@cache
def _prompt() -> dict[str, Any]:
    return read_toml("prompts", "judge.toml")


def max_tokens() -> int:
    return int(_prompt()["max_tokens"])


def _fill(key: str, values: dict[str, Any]) -> str:
    texts = _prompt()
    if not isinstance(texts.get(key), str):
        raise EmgenError(f"{PROMPT_FILE} has no {key!r} text")
    try:
        return Template(texts[key]).substitute(values)
    except KeyError as exc:
        raise EmgenError(f"{PROMPT_FILE}: {key} needs a value for ${exc.args[0]}") from None


def check_prompts() -> None:
    """Fail early (before any request) when the judge's prompt file lacks a text."""
    for key in ("system", "user", "criteria_correct", "criteria_subtle", "criteria_obvious"):
        if not isinstance(_prompt().get(key), str):
            raise EmgenError(f"{PROMPT_FILE} has no {key!r} text")


def request(domain: Domain, draft: Draft, variant: str, seed: int) -> ChatRequest:
    """The judge's request for ``draft``'s ``variant`` answer (temperature 0, so a rerun asks the same)."""
    answer = draft.answers[variant]
    values = {
        "domain": domain.name,
        "description": domain.description,
        "variant": variant,
        "criteria": _fill(f"criteria_{variant}", {}),
        "question": draft.prompt,
        "answer": answer.text,
        "flaw": answer.flaw if variant != "correct" and answer.flaw else NO_FLAW,
    }
    messages = (("system", _fill("system", values)), ("user", _fill("user", values)))
    return ChatRequest(messages, SCHEMA, temperature=0.0, max_tokens=max_tokens(), seed=seed)


def apply(draft: Draft, variant: str, reply: Reply, thresholds: Thresholds, model: str) -> Draft:
    """``draft`` with the verdict in its answer's metadata and, when it fails, the judge's problems."""
    if reply.data is None or reply.problem is not None:
        problem = Problem("judge-unusable", f"the judge's reply could not be used ({reply.problem}: {reply.detail})")
        return dataclasses.replace(draft, problems=(*draft.problems, problem))
    scores = {axis: int(reply.data[axis]) for axis in ("variant", "coherence", "leakage")}
    reason = " ".join(str(reply.data["reason"]).split())
    verdict = {"model": model, **scores, "reason": reason}
    answer = draft.answers[variant]
    judged = dataclasses.replace(answer, metadata={**answer.metadata, "judge": verdict})
    return dataclasses.replace(
        draft,
        answers={**draft.answers, variant: judged},
        problems=(*draft.problems, *thresholds.problems(scores, reason)),
    )
