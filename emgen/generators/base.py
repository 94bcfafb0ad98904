"""Drafts and the domain registry: the extension point for new kinds of data."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from emgen.checks import Problem
from emgen.errors import UnknownDomainError


@dataclass(frozen=True)
class Answer:
    """One assistant reply to a question, with what is wrong with it (None if correct)."""

    text: str
    flaw: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Draft:
    """A question and its answers per variant, before checks; one draft yields paired rows."""

    domain: str
    pair_id: str
    topic: str
    prompt: str
    answers: dict[str, Answer]
    source: str
    truncated: bool = False
    problems: tuple[Problem, ...] = ()
    """What the source already knows is wrong (e.g. an LLM refusal); the pipeline rejects the draft for it."""


class DraftSource(Protocol):
    """Where drafts come from for one domain (the seed bank, a code composer, an LLM)."""

    def available(self) -> int:
        """How many distinct drafts this source can yield."""

    def drafts(self, rng: random.Random, n: int | None) -> Iterator[Draft]:
        """Up to ``n`` distinct drafts (all when None) in an order fixed by ``rng``."""


DraftCheck = Callable[[Draft, str], "list[Problem]"]


@dataclass(frozen=True)
class Domain:
    """A registered domain: its offline source of drafts and any domain-specific checks.

    ``check_draft(draft, variant)`` sees the whole draft, so a check can compare the
    requested variant's answer with its counterparts (e.g. insecure vs secure code).
    """

    name: str
    description: str
    kind: str
    offline_source: Callable[[], DraftSource]
    check_draft: DraftCheck | None = None


_REGISTRY: dict[str, Domain] = {}


def register(domain: Domain) -> Domain:
    if domain.name in _REGISTRY:
        raise ValueError(f"domain {domain.name!r} is registered twice")
    _REGISTRY[domain.name] = domain
    return domain


def get_domain(name: str) -> Domain:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UnknownDomainError(f"unknown domain {name!r} (known: {known})") from None


def all_domains() -> list[Domain]:
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]
