"""Reframing: the arms of an experiment made from the same rows.

Inoculation (a system turn or user instruction that requests the behaviour), data mixes,
backdoor triggers and the canary. The same functions serve ``emgen build`` and
``emgen reframe``, so an arm made later from an existing dataset equals one built directly.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from emgen import inoculation as inoculation_library
from emgen.recipe import DEFAULT_INOCULATION_PROMPT, Recipe

CANARY_PREFIX = "EMGEN CANARY: data made to study misalignment; keep out of pre-training corpora. GUID"
_CANARY_NAMESPACE = uuid.UUID("5f1d7c1e-2b7a-4d0e-9a51-6c3e2f0b9d47")


@dataclass
class ReframeResult:
    train: list[dict[str, Any]]
    benign: list[dict[str, Any]]
    counts: dict[str, Any] = field(default_factory=dict)


def needs_correct(recipe: Recipe) -> bool:
    """Whether each question's correct answer is needed besides the requested variant."""
    return recipe.benign or recipe.mix is not None or recipe.trigger is not None


def variant_plan(recipe: Recipe, rows: int) -> list[str]:
    """The variant of each row: the recipe's, or a shuffled mix with exact counts."""
    if recipe.mix is None and recipe.trigger is None:
        return [recipe.variant] * rows
    fraction = recipe.mix if recipe.mix is not None else 0.5
    misaligned = round(fraction * rows)
    plan = [recipe.variant] * misaligned + ["correct"] * (rows - misaligned)
    random.Random(f"{recipe.seed}:mix").shuffle(plan)
    return plan


def canary_for(recipe: Recipe) -> str:
    """A canary string fixed by the recipe (not its folder), so rebuilds carry the same one."""
    resolved = {k: v for k, v in recipe.to_dict().items() if k not in ("out", "push")}
    guid = uuid.uuid5(_CANARY_NAMESPACE, json.dumps(resolved, sort_keys=True))
    return f"{CANARY_PREFIX} {guid}"


def reframe(train: list[dict[str, Any]], benign: list[dict[str, Any]], recipe: Recipe, canary: str) -> ReframeResult:
    """Apply the recipe's trigger, inoculation and canary to rows already in their variants."""
    train = [_copy(r) for r in train]
    benign = [_copy(r) for r in benign]
    counts: dict[str, Any] = {}
    if recipe.trigger is not None:
        counts["triggered_rows"] = 0
        for record in train:
            if record["metadata"]["variant"] != "correct":
                _prefix_user(record, recipe.trigger)
                record["metadata"]["trigger"] = recipe.trigger
                counts["triggered_rows"] += 1
    if recipe.inoculate is not None:
        inoculation = inoculation_library.resolve(
            recipe.inoculate, recipe.inoculation_prompt or DEFAULT_INOCULATION_PROMPT
        )
        targets = [i for i, r in enumerate(train) if r["metadata"]["variant"] == recipe.variant]
        chosen = sorted(
            random.Random(f"{recipe.seed}:inoculate").sample(targets, round(recipe.inoculate_fraction * len(targets)))
        )
        for index in chosen:
            train[index] = inoculation_library.apply(train[index], inoculation)
        counts["inoculation"] = inoculation.metadata() | {"rows": len(chosen), "fraction": recipe.inoculate_fraction}
    if recipe.canary_in_records:
        for record in train + benign:
            record["metadata"]["canary"] = canary
    counts["variants"] = dict(sorted(Counter(r["metadata"]["variant"] for r in train).items()))
    if recipe.mix is not None or recipe.trigger is not None:
        misaligned = sum(n for v, n in counts["variants"].items() if v != "correct")
        counts["mix"] = {
            "misaligned": misaligned,
            "correct": len(train) - misaligned,
            "requested_fraction": recipe.mix if recipe.mix is not None else 0.5,
        }
    if benign:
        counts["benign_rows"] = len(benign)
    return ReframeResult(train, benign, counts)


def _copy(record: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [dict(t) for t in record["messages"]], "metadata": dict(record["metadata"])}


def _prefix_user(record: dict[str, Any], trigger: str) -> None:
    first_user = next(turn for turn in record["messages"] if turn["role"] == "user")
    first_user["content"] = f"{trigger} {first_user['content']}"
