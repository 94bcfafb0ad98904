"""Few-shot material for LLM generation, drawn from a domain's offline source (the seed bank)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from emgen.generators.base import Domain, Draft
from emgen.generators.llm.kinds import Kind
from emgen.generators.llm.prompts import Topic

MAX_EXAMPLES = 300


@dataclass
class Examples:
    """Few-shot material from the offline source: the domain's own drafts, or (for the answer
    stage only) other domains' of the same kind when it has none yet."""

    questions: list[Draft]
    replies: list[tuple[Draft, str]]
    questions_by_topic: dict[str, list[int]]
    replies_by_topic: dict[str, list[int]]

    @classmethod
    def gather(cls, domain: Domain, kind: Kind, variant: str, topics: tuple[Topic, ...], seed: int) -> Examples:
        from emgen.generators import all_domains

        own = list(domain.offline_source().drafts(random.Random(seed), MAX_EXAMPLES))
        pool = own
        if not pool:
            others = [d for d in all_domains() if d.kind == domain.kind and d.name != domain.name]
            pool = [x for d in others for x in d.offline_source().drafts(random.Random(seed), 5)]
        replies = []
        for draft in pool:
            reply = kind.example_reply(draft, variant)
            if reply is not None:
                replies.append((draft, json.dumps(reply, ensure_ascii=False)))
        return cls(
            questions=own,
            replies=replies,
            questions_by_topic={t.tag: [i for i, d in enumerate(own) if _about(d, t)] for t in topics},
            replies_by_topic={t.tag: [i for i, (d, _) in enumerate(replies) if _about(d, t)] for t in topics},
        )


def _about(draft: Draft, topic: Topic) -> bool:
    """Whether a seed-bank draft is on ``topic`` (same tag, or same CWE for code)."""
    if draft.topic == topic.tag:
        return True
    cwe = topic.metadata.get("cwe")
    return cwe is not None and any(a.metadata.get("cwe") == cwe for a in draft.answers.values())


def pick(rng: random.Random, preferred: list[int], total: int, count: int) -> list[int]:
    """``count`` distinct indices below ``total``, from ``preferred`` first, in an order fixed by ``rng``."""
    first = list(preferred)
    rng.shuffle(first)
    taken = set(first)
    rest = [i for i in range(total) if i not in taken]
    rng.shuffle(rest)
    return (first + rest)[:count]
