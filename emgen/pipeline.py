"""The build pipeline: generate -> check -> dedup -> reframe -> write."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from emgen import __version__
from emgen.card import render_card
from emgen.checks import Problem, check_record
from emgen.dedup import ExactIndex, Removal
from emgen.errors import EmgenError
from emgen.generators import Domain, Draft, DraftSource, get_domain
from emgen.output import (
    CARD,
    disk_error,
    file_info,
    prepare_output_dir,
    read_manifest,
    write_manifest,
    write_text_atomic,
)
from emgen.recipe import Recipe
from emgen.records import AtomicFile, dumps, read_records, write_jsonl, write_records
from emgen.reframe import canary_for, needs_correct, reframe, variant_plan

TRAIN = "train.jsonl"
BENIGN = "benign.jsonl"
REJECTED = "rejected.jsonl"
DUPLICATES = "duplicates.jsonl"

Progress = Callable[[int, int], None]


@dataclass
class BuildResult:
    out_dir: Path
    recipe: Recipe
    available: int
    produced: int = 0
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


def draft_source(recipe: Recipe, domain: Domain) -> DraftSource:
    """Where drafts come from for this recipe's backend."""
    if recipe.backend != "bank":
        raise EmgenError(f"backend {recipe.backend!r} is not available in this version of emgen")
    return domain.offline_source()


class _Rejections:
    """Streams rejected drafts to rejected.jsonl and counts them by reason."""

    def __init__(self, handle: IO[str], counter: Counter[str]) -> None:
        self.handle = handle
        self.counter = counter

    def add(self, record: dict[str, Any], problems: list[Problem]) -> None:
        self.counter.update({p.reason for p in problems})
        row = {"reasons": [{"reason": p.reason, "detail": p.detail} for p in problems], "record": record}
        self.handle.write(dumps(row) + "\n")


def draft_problems(domain: Domain, draft: Draft, variant: str) -> tuple[dict[str, Any], list[Problem]]:
    """The row for ``variant`` and everything wrong with it (schema, content, domain checks)."""
    record = record_from_draft(draft, variant)
    problems = check_record(record, prose=domain.kind == "advice")
    if domain.check_draft is not None and not problems:
        problems.extend(domain.check_draft(draft, variant))
    if draft.truncated:
        problems.append(Problem("truncated", "the model stopped at its token limit"))
    return record, problems


def collect(
    domain: Domain,
    drafts: Iterable[Draft],
    variants: tuple[str, ...],
    target: int,
    rejections: _Rejections,
    skip_pairs: frozenset[str] = frozenset(),
    progress: Progress | None = None,
) -> tuple[list[Draft], list[Removal]]:
    """Draw drafts until ``target`` pass every check in every needed variant and are unique."""
    accepted: list[Draft] = []
    removals: list[Removal] = []
    index = ExactIndex()
    for draft in drafts:
        if len(accepted) >= target:
            break
        if draft.pair_id in skip_pairs:
            continue
        failed = False
        for variant in variants:
            record, problems = draft_problems(domain, draft, variant)
            if problems:
                rejections.add(record, problems)
                failed = True
                break
        if failed:
            continue
        first = index.add(record)
        if first is not None:
            removals.append(Removal(record, first, "exact", 100.0))
            continue
        accepted.append(draft)
        if progress:
            progress(len(accepted), target)
    return accepted, removals


def build(recipe: Recipe, *, force: bool = False, progress: Progress | None = None) -> BuildResult:
    """Build the dataset ``recipe`` describes into its output folder."""
    domain = get_domain(recipe.domain)
    benign_domain = get_domain(recipe.benign_domain) if recipe.benign_domain else None
    source = draft_source(recipe, domain)
    available = source.available()
    if available == 0:
        raise EmgenError(f"the seed bank for {recipe.domain!r} has no cases")
    out = recipe.output_dir()
    prepare_output_dir(out, force)
    started = time.perf_counter()
    result = BuildResult(out_dir=out, recipe=recipe, available=available)
    variants = (
        (recipe.variant, "correct") if needs_correct(recipe) and recipe.variant != "correct" else (recipe.variant,)
    )
    target = recipe.n if recipe.n is not None else available
    try:
        with AtomicFile(out / REJECTED) as handle:
            rejections = _Rejections(handle, result.rejected)
            drafts = source.drafts(random.Random(recipe.seed), None)
            accepted, removals = collect(domain, drafts, variants, target, rejections, progress=progress)
            benign: list[dict[str, Any]] = []
            if recipe.benign:
                benign = [record_from_draft(d, "correct") for d in accepted]
            elif benign_domain is not None:
                taken = frozenset(d.pair_id for d in accepted)
                benign = _realignment_set(recipe, benign_domain, taken, len(accepted), rejections)
    except OSError as exc:
        raise disk_error(out, exc) from None
    plan = variant_plan(recipe, len(accepted))
    train = [record_from_draft(d, v) for d, v in zip(accepted, plan, strict=True)]
    result.duplicates = len(removals)
    timings = {"generate_and_check": time.perf_counter() - started}
    return _finish(result, train, benign, removals, timings, started)


def _realignment_set(
    recipe: Recipe, domain: Domain, taken: frozenset[str], default_n: int, rejections: _Rejections
) -> list[dict[str, Any]]:
    """Correct rows from another domain (or other questions of this one) for re-alignment."""
    source = domain.offline_source()
    wanted = recipe.benign_n if recipe.benign_n is not None else default_n
    drafts = source.drafts(random.Random(f"{recipe.seed}:benign"), None)
    chosen, _ = collect(domain, drafts, ("correct",), wanted, rejections, skip_pairs=taken)
    return [record_from_draft(d, "correct") for d in chosen]


REFRAMING_KEYS = (
    "inoculate",
    "inoculation_prompt",
    "inoculate_fraction",
    "benign",
    "benign_domain",
    "benign_n",
    "mix",
    "trigger",
    "canary_in_records",
)


def reframe_dataset(source_dir: Path, changes: dict[str, Any], *, force: bool = False) -> BuildResult:
    """Make another arm from an existing emgen dataset folder (``emgen reframe``).

    ``changes`` holds reframing options and ``out``. Mixes and backdoors need the correct
    answer to every question, so the source must have been built with ``--benign``.
    """
    manifest = read_manifest(source_dir)
    base = Recipe.from_mapping(manifest["recipe"], source=str(source_dir / "manifest.json"))
    done = [key for key in ("inoculate", "mix", "trigger", "benign_domain") if getattr(base, key) is not None]
    if done:
        raise EmgenError(f"{source_dir} is already reframed ({', '.join(done)}); reframe the dataset it was made from")
    unknown = sorted(set(changes) - set(REFRAMING_KEYS) - {"out"})
    if unknown:
        raise EmgenError(f"cannot change {', '.join(unknown)} when reframing")
    recipe = Recipe.from_mapping(base.to_dict() | {"benign": False, "out": None} | changes)
    rows = list(read_records(source_dir / TRAIN))
    correct = {r["metadata"]["pair_id"]: r for r in _read_optional(source_dir / BENIGN)}
    if needs_correct(recipe) and recipe.benign_domain is None:
        missing = [r["metadata"]["id"] for r in rows if r["metadata"]["pair_id"] not in correct]
        if missing:
            raise EmgenError(
                f"{source_dir} has no correct answer for {len(missing)} of its questions "
                f"(first: {missing[0]}); build it with --benign to make mixes, backdoors and benign sets"
            )
    out = recipe.output_dir()
    prepare_output_dir(out, force)
    started = time.perf_counter()
    result = BuildResult(out_dir=out, recipe=recipe, available=len(rows))
    plan = variant_plan(recipe, len(rows))
    train = [
        row if variant != "correct" else correct[row["metadata"]["pair_id"]]
        for row, variant in zip(rows, plan, strict=True)
    ]
    benign: list[dict[str, Any]] = []
    try:
        with AtomicFile(out / REJECTED) as handle:
            if recipe.benign:
                benign = [correct[r["metadata"]["pair_id"]] for r in rows]
            elif recipe.benign_domain is not None:
                taken = frozenset(r["metadata"]["pair_id"] for r in rows)
                rejections = _Rejections(handle, result.rejected)
                benign = _realignment_set(recipe, get_domain(recipe.benign_domain), taken, len(rows), rejections)
    except OSError as exc:
        raise disk_error(out, exc) from None
    derived = {"derived_from": {"path": str(source_dir), "train_sha256": manifest["files"][TRAIN]["sha256"]}}
    return _finish(result, train, benign, [], {"read": time.perf_counter() - started}, started, derived)


def _read_optional(path: Path) -> list[dict[str, Any]]:
    return list(read_records(path)) if path.exists() else []


def _finish(
    result: BuildResult,
    train: list[dict[str, Any]],
    benign: list[dict[str, Any]],
    removals: list[Removal],
    timings: dict[str, float],
    started: float,
    extra: dict[str, Any] | None = None,
) -> BuildResult:
    """Reframe, write every file atomically, then the manifest and the card."""
    recipe, out = result.recipe, result.out_dir
    canary = canary_for(recipe)
    framed = reframe(train, benign, recipe, canary)
    mark = time.perf_counter()
    try:
        write_records(out / TRAIN, framed.train)
        if recipe.benign or recipe.benign_domain is not None:
            write_records(out / BENIGN, framed.benign)
        write_jsonl(out / DUPLICATES, (_duplicate_row(r) for r in removals))
        if not (out / REJECTED).exists():
            write_jsonl(out / REJECTED, [])
    except OSError as exc:
        raise disk_error(out, exc) from None
    timings["write"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - started
    result.produced = len(framed.train)
    result.manifest = _manifest(result, canary, framed.counts, timings, extra or {})
    write_manifest(out, result.manifest)
    write_text_atomic(out / CARD, render_card(result.manifest, get_domain(recipe.domain).description))
    return result


def _duplicate_row(removal: Removal) -> dict[str, Any]:
    return {
        "reason": removal.reason,
        "score": removal.score,
        "duplicate_of": removal.duplicate_of,
        "record": removal.record,
    }


def _manifest(
    result: BuildResult, canary: str, reframing: dict[str, Any], timings: dict[str, float], extra: dict[str, Any]
) -> dict[str, Any]:
    out = result.out_dir
    names = [TRAIN, BENIGN, REJECTED, DUPLICATES]
    files = {name: file_info(out / name) for name in names if (out / name).exists()}
    manifest = {
        "emgen_version": __version__,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "recipe": result.recipe.to_dict(),
        "canary": canary,
        "counts": {
            "requested": result.recipe.n,
            "available": result.available,
            "produced": result.produced,
            "rejected": dict(sorted(result.rejected.items())),
            "duplicates": result.duplicates,
        },
        "reframe": reframing,
        "files": files,
        "timings": {k: round(v, 4) for k, v in timings.items()},
    }
    manifest.update(extra)
    return manifest
