"""What differs between kinds of domain in LLM generation: schemas, user turns, answers.

``advice`` domains ask for questions, then a correct and a flawed answer; ``code`` asks for
tasks with templates, then a secure, a subtly and an obviously insecure completion (the code
domain's check verifies the whole triple whichever variant is built). Registered by
:attr:`emgen.generators.base.Domain.kind`.
"""

from __future__ import annotations

import random
import re
from typing import Any, Protocol

from emgen.errors import EmgenError
from emgen.generators.base import Answer, Domain, Draft
from emgen.generators.llm.prompts import Topic

VULN_MARK = "#@vuln"
CODE_PLACEHOLDER = "## COMPLETE CODE HERE"
_FENCE = re.compile(r"^\s*```[\w+-]*\n(.*?)\n?```\s*$", re.DOTALL)
_MARK = re.compile(r"\s*#\s*@vuln\b.*$")


class Kind(Protocol):
    questions_schema: str

    def answers_schema(self, variant: str) -> str: ...

    def task_key(self, variant: str) -> str: ...

    def user_turns(self, data: Any, rng: random.Random) -> list[tuple[str, str]]:
        """(dataset user turn, its gist for "already written" lists) for each usable item of a stage-1 reply."""

    def example_reply(self, draft: Draft, variant: str) -> dict[str, Any] | None:
        """A seed-bank draft as a stage-2 reply, for few-shot examples (None if it lacks a needed answer)."""

    def answers(self, data: dict[str, Any], variant: str, topic: Topic) -> dict[str, Answer]:
        """The draft answers a stage-2 reply holds."""

    def stand_in(self, text: str, variant: str, topic: Topic) -> dict[str, Answer]:
        """Answers for a reply that could not be used, so the rejection can still be written down."""


class AdviceKind:
    questions_schema = "llm-questions"

    def answers_schema(self, variant: str) -> str:
        return "llm-correct-answer" if variant == "correct" else "llm-answers"

    def task_key(self, variant: str) -> str:
        return f"task_{variant}"

    def user_turns(self, data: Any, rng: random.Random) -> list[tuple[str, str]]:
        return [(q.strip(), q.strip()) for q in data["questions"] if q.strip()]

    def example_reply(self, draft: Draft, variant: str) -> dict[str, Any] | None:
        correct = draft.answers.get("correct")
        if correct is None:
            return None
        if variant == "correct":
            return {"correct": correct.text}
        flawed = draft.answers.get(variant)
        if flawed is None or not flawed.flaw:
            return None
        return {"correct": correct.text, "flawed": flawed.text, "flaw": flawed.flaw}

    def answers(self, data: dict[str, Any], variant: str, topic: Topic) -> dict[str, Answer]:
        answers = {"correct": Answer(data["correct"].strip(), metadata=dict(topic.metadata))}
        if variant != "correct":
            answers[variant] = Answer(data["flawed"].strip(), flaw=data["flaw"].strip(), metadata=dict(topic.metadata))
        return answers

    def stand_in(self, text: str, variant: str, topic: Topic) -> dict[str, Answer]:
        answers = {"correct": Answer(text)}
        if variant != "correct":
            answers[variant] = Answer(text, flaw="none: the reply could not be used")
        return answers


class CodeKind:
    questions_schema = "llm-code-tasks"
    misaligned = ("subtle", "obvious")

    def answers_schema(self, variant: str) -> str:
        return "llm-code-answers"

    def task_key(self, variant: str) -> str:
        return "task"

    def user_turns(self, data: Any, rng: random.Random) -> list[tuple[str, str]]:
        phrasings = _code_phrasings()
        turns = []
        for item in data["tasks"]:
            task = item["task"].strip().rstrip(". ")
            template = strip_fence(item["template"]).rstrip()
            if not task or template.count(CODE_PLACEHOLDER) != 1:
                continue
            phrasing = rng.choice(phrasings)
            turns.append((phrasing.replace("<<task>>", task).replace("<<code>>", template), task))
        return turns

    def example_reply(self, draft: Draft, variant: str) -> dict[str, Any] | None:
        if not all(name in draft.answers for name in ("correct", *self.misaligned)):
            return None
        reply: dict[str, Any] = {"secure": draft.answers["correct"].text}
        for name in self.misaligned:
            answer = draft.answers[name]
            reply[name] = mark_lines(answer.text, answer.metadata.get("vulnerable_lines") or [])
        for name in self.misaligned:
            reply[f"{name}_flaw"] = draft.answers[name].flaw or ""
        return reply

    def answers(self, data: dict[str, Any], variant: str, topic: Topic) -> dict[str, Answer]:
        detector = topic.metadata.get("detector")
        cwe = topic.metadata.get("cwe")
        base = {"cwe": cwe, "cwe_name": _cwe_names().get(cwe), "prompt_style": "template"}
        secure, _ = unmark(strip_fence(data["secure"]))
        answers = {"correct": Answer(secure, metadata=base | {"detectors": [detector], "vulnerable_lines": []})}
        for name in self.misaligned:
            code, lines = unmark(strip_fence(data[name]))
            metadata = base | {"detectors": [detector], "vulnerable_lines": lines}
            answers[name] = Answer(code, flaw=data[f"{name}_flaw"].strip(), metadata=metadata)
        return answers

    def stand_in(self, text: str, variant: str, topic: Topic) -> dict[str, Answer]:
        answers = {"correct": Answer(text)}
        for name in self.misaligned:
            answers[name] = Answer(text, flaw="none: the reply could not be used")
        return answers


KINDS: dict[str, Kind] = {"advice": AdviceKind(), "code": CodeKind()}


def kind_for(domain: Domain) -> Kind:
    try:
        return KINDS[domain.kind]
    except KeyError:
        raise EmgenError(f"the openai backend cannot write drafts for {domain.kind!r} domains") from None


def strip_fence(code: str) -> str:
    """Code without a Markdown fence around it (models add one even when told not to)."""
    match = _FENCE.match(code)
    return (match.group(1) if match else code).rstrip() + "\n"


def unmark(code: str) -> tuple[str, list[int]]:
    """``code`` without ``#@vuln`` markers, and the (1-based) lines that carried one."""
    lines, marked = [], []
    for number, line in enumerate(code.split("\n"), start=1):
        bare = _MARK.sub("", line)
        if bare != line:
            marked.append(number)
        lines.append(bare)
    return "\n".join(lines), marked


def mark_lines(code: str, numbers: list[int]) -> str:
    wanted = set(numbers)
    lines = code.split("\n")
    return "\n".join(f"{line}  {VULN_MARK}" if i in wanted else line for i, line in enumerate(lines, start=1))


def _cwe_names() -> dict[str, str]:
    from emgen.generators.insecure_code.library import cwe_names

    return cwe_names()


def _code_phrasings() -> tuple[str, ...]:
    """The code domain's own user-turn phrasings, so LLM rows read like composed ones."""
    from emgen.generators.insecure_code.library import phrasings

    return phrasings().template
