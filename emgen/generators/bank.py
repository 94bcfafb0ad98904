"""The seed bank: expert-written cases under ``emgen/generators/bank/<domain>.jsonl``."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from emgen.errors import EmgenError
from emgen.generators.base import Answer, Draft
from emgen.records import iter_jsonl
from emgen.resources import schema_errors
from emgen.text import pair_id_for


@dataclass(frozen=True)
class Case:
    id: str
    topic: str
    question: str
    answers: dict[str, str]
    flaws: dict[str, str]


def bank_path(domain: str) -> Path:
    return Path(str(resources.files("emgen").joinpath("generators", "bank", f"{domain}.jsonl")))


def read_cases(path: Path) -> list[Case]:
    """Every case of a bank file, each validated against the bank-entry schema."""
    cases = []
    for number, entry in iter_jsonl(path):
        errors = schema_errors("bank-entry", entry)
        if errors:
            raise EmgenError(f"{path}:{number}: {errors[0]}")
        cases.append(Case(**entry))
    return cases


@cache
def load_bank(domain: str) -> tuple[Case, ...]:
    path = bank_path(domain)
    if not path.exists():
        return ()
    return tuple(read_cases(path))


class BankSource:
    """Drafts from the seed bank: every case gives a correct, a subtle and an obvious answer."""

    def __init__(self, domain: str) -> None:
        self.domain = domain

    def available(self) -> int:
        return len(load_bank(self.domain))

    def drafts(self, rng: random.Random, n: int | None) -> Iterator[Draft]:
        cases = list(load_bank(self.domain))
        rng.shuffle(cases)
        for case in cases[:n]:
            yield draft_from_case(self.domain, case)


def draft_from_case(domain: str, case: Case) -> Draft:
    answers = {
        variant: Answer(text=text, flaw=case.flaws.get(variant), metadata={"bank_id": case.id})
        for variant, text in case.answers.items()
    }
    return Draft(
        domain=domain,
        pair_id=pair_id_for(domain, case.question),
        topic=case.topic,
        prompt=case.question,
        answers=answers,
        source="bank",
    )
