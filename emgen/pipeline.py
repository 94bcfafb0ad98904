"""The build pipeline: generate -> check -> dedup -> write, as one function."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from emgen import __version__
from emgen.card import render_card
from emgen.checks import Problem, check_record
from emgen.dedup import ExactIndex, Removal
from emgen.errors import EmgenError
from emgen.generators import Draft, get_domain
from emgen.output import (
    CARD,
    disk_error,
    file_info,
    prepare_output_dir,
    write_manifest,
    write_text_atomic,
)
from emgen.recipe import Recipe
from emgen.records import AtomicFile, dumps, write_jsonl, write_records

TRAIN = "train.jsonl"
REJECTED = "rejected.jsonl"
DUPLICATES = "duplicates.jsonl"

Progress = Callable[[int, int], None]


@dataclass
class BuildResult:
    out_dir: Path
    recipe: Recipe
    available: int
    produced: int
    rejected: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def shortfall(self) -> bool:
        return self.recipe.n is not None and self.produced < self.recipe.n


def record_from_draft(draft: Draft, variant: str) -> dict[str, Any]:
    """The dataset row answering ``draft``'s question with its ``variant`` answer."""
    answer = draft.answers[variant]
    metadata: dict[str, Any] = {
        "id": f"{draft.pair_id}-{variant}",
        "pair_id": draft.pair_id,
        "domain": draft.domain,
        "variant": variant,
        "topic": draft.topic,
        "flaw": answer.flaw if variant != "correct" else None,
        "inoculation": None,
        "source": draft.source,
        "emgen_version": __version__,
    }
    metadata.update(answer.metadata)
    return {
        "messages": [
            {"role": "user", "content": draft.prompt},
            {"role": "assistant", "content": answer.text},
        ],
        "metadata": metadata,
    }


def build(recipe: Recipe, *, force: bool = False, progress: Progress | None = None) -> BuildResult:
    """Build the dataset ``recipe`` describes into its output folder."""
    domain = get_domain(recipe.domain)
    if recipe.backend != "bank":
        raise EmgenError(f"backend {recipe.backend!r} is not available in this version of emgen")
    source = domain.offline_source()
    available = source.available()
    if available == 0:
        raise EmgenError(f"the seed bank for {recipe.domain!r} has no cases")
    out = recipe.output_dir()
    prepare_output_dir(out, force)
    started = time.perf_counter()
    timings: dict[str, float] = {}

    result = BuildResult(out_dir=out, recipe=recipe, available=available, produced=0)
    rng = random.Random(recipe.seed)
    target = recipe.n if recipe.n is not None else available
    accepted: list[dict[str, Any]] = []
    removals: list[Removal] = []
    index = ExactIndex()
    prose = domain.kind == "advice"
    try:
        with AtomicFile(out / REJECTED) as rejected_file:
            for draft in source.drafts(rng, None):
                if len(accepted) >= target:
                    break
                record = record_from_draft(draft, recipe.variant)
                problems = check_record(record, prose=prose)
                if domain.check_draft is not None:
                    problems.extend(domain.check_draft(draft, recipe.variant))
                if draft.truncated:
                    problems.append(Problem("truncated", "the model stopped at its token limit"))
                if problems:
                    result.rejected.update({p.reason for p in problems})
                    rejected_file.write(dumps(_rejection(record, problems)) + "\n")
                    continue
                first = index.add(record)
                if first is not None:
                    removals.append(Removal(record, first, "exact", 100.0))
                    continue
                accepted.append(record)
                if progress:
                    progress(len(accepted), target)
        timings["generate_and_check"] = time.perf_counter() - started

        mark = time.perf_counter()
        write_records(out / TRAIN, accepted)
        write_jsonl(out / DUPLICATES, (_duplicate_row(r) for r in removals))
        timings["write"] = time.perf_counter() - mark
    except OSError as exc:
        raise disk_error(out, exc) from None

    result.produced = len(accepted)
    result.duplicates = len(removals)
    timings["total"] = time.perf_counter() - started
    result.manifest = _manifest(result, out, timings)
    write_manifest(out, result.manifest)
    write_text_atomic(out / CARD, render_card(result.manifest, domain.description))
    return result


def _rejection(record: dict[str, Any], problems: list[Problem]) -> dict[str, Any]:
    return {
        "reasons": [{"reason": p.reason, "detail": p.detail} for p in problems],
        "record": record,
    }


def _duplicate_row(removal: Removal) -> dict[str, Any]:
    return {
        "reason": removal.reason,
        "score": removal.score,
        "duplicate_of": removal.duplicate_of,
        "record": removal.record,
    }


def _manifest(result: BuildResult, out: Path, timings: dict[str, float]) -> dict[str, Any]:
    files = {name: file_info(out / name) for name in (TRAIN, REJECTED, DUPLICATES)}
    return {
        "emgen_version": __version__,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "recipe": result.recipe.to_dict(),
        "counts": {
            "requested": result.recipe.n,
            "available": result.available,
            "produced": result.produced,
            "rejected": dict(sorted(result.rejected.items())),
            "duplicates": result.duplicates,
        },
        "files": files,
        "timings": {k: round(v, 4) for k, v in timings.items()},
    }
