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
from emgen.dedup import Deduper, Removal
from emgen.errors import EmgenError
from emgen.exclude import read_exclude_file
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
Status = Callable[[dict[str, Any]], None]


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


def draft_source(recipe: Recipe, domain: Domain, status: Status | None = None) -> DraftSource:
    """Where drafts come from for this recipe's backend (see :data:`SOURCES`)."""
    return SOURCES[recipe.backend](recipe, domain, status)


def _bank_source(recipe: Recipe, domain: Domain, status: Status | None) -> DraftSource:
    return domain.offline_source()


def _openai_source(recipe: Recipe, domain: Domain, status: Status | None) -> DraftSource:
    from emgen.generators.llm.source import LLMSource  # imports the openai client only when used

    return LLMSource(domain, recipe, status=status)


SOURCES: dict[str, Callable[[Recipe, Domain, Status | None], DraftSource]] = {
    "bank": _bank_source,
    "openai": _openai_source,
}


def _with_feedback(source: DraftSource, progress: Progress | None) -> Progress | None:
    """Tell a source that plans its work by acceptances (the LLM source) about each one, then ``progress``."""
    tell = getattr(source, "accepted", None)
    if tell is None:
        return progress

    def report(done: int, total: int) -> None:
        tell(done)
        if progress is not None:
            progress(done, total)

    return report


def _source_report(source: DraftSource) -> dict[str, Any]:
    """A source's own manifest section (the LLM source's ``llm``: model, tokens, cache hits)."""
    report = getattr(source, "report", None)
    return {"llm": report()} if report is not None else {}


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
    if draft.problems:
        return record, list(draft.problems)
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
    deduper: Deduper,
    skip_pairs: frozenset[str] = frozenset(),
    progress: Progress | None = None,
    answer_deduper: Deduper | None = None,
) -> tuple[list[Draft], list[Removal]]:
    """Draw drafts until ``target`` pass every check in every needed variant and are unique.

    A question that duplicates an earlier one, or an excluded prompt, is removed with all
    its variants (pair consistency) and replaced by the next draft.
    """
    accepted: list[Draft] = []
    removals: list[Removal] = []
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
        found = deduper.check(record["metadata"]["id"], draft.prompt)
        if found is None and answer_deduper is not None:
            found = answer_deduper.check(record["metadata"]["id"], draft.answers[variants[0]].text)
            found = (f"answer-{found[0]}", found[1]) if found else None
        if found is not None:
            reason, match = found
            removals.append(Removal(record, match.key, reason, match.score, match.text))
            continue
        accepted.append(draft)
        if progress:
            progress(len(accepted), target)
        if len(accepted) >= target:
            break
    return accepted, removals


def deduper_for(recipe: Recipe) -> tuple[Deduper, dict[str, Any]]:
    """The deduper for a recipe, loaded with its exclude files, and their description."""
    files = [read_exclude_file(path) for path in recipe.exclude]
    deduper = Deduper(recipe.near_dup_threshold, [p for f in files for p in f.prompts])
    described = {f.path: {"sha256": f.sha256, "prompts": len(f.prompts)} for f in files}
    return deduper, described


def build(
    recipe: Recipe, *, force: bool = False, progress: Progress | None = None, status: Status | None = None
) -> BuildResult:
    """Build the dataset ``recipe`` describes into its output folder.

    ``status`` receives the LLM source's traffic counters while it runs (for a live display).
    """
    domain = get_domain(recipe.domain)
    benign_domain = get_domain(recipe.benign_domain) if recipe.benign_domain else None
    source = draft_source(recipe, domain, status)
    available = source.available()
    if available == 0:
        raise EmgenError(f"the seed bank for {recipe.domain!r} has no cases")
    deduper, exclude_files = deduper_for(recipe)
    answer_deduper = Deduper(recipe.near_dup_threshold) if recipe.dedup_answers else None
    out = recipe.output_dir()
    prepare_output_dir(out, force, keep=getattr(source, "resume_files", ()))
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
            try:
                accepted, removals = collect(
                    domain,
                    drafts,
                    variants,
                    target,
                    rejections,
                    deduper,
                    progress=_with_feedback(source, progress),
                    answer_deduper=answer_deduper,
                )
            finally:
                getattr(drafts, "close", lambda: None)()
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
    dedup = {
        "near_dup_threshold": recipe.near_dup_threshold,
        "removed": dict(sorted(Counter(r.reason for r in removals).items())),
        "exclude_files": exclude_files,
    }
    return _finish(result, train, benign, removals, timings, started, {"dedup": dedup} | _source_report(source))


def _realignment_set(
    recipe: Recipe, domain: Domain, taken: frozenset[str], default_n: int, rejections: _Rejections
) -> list[dict[str, Any]]:
    """Correct rows from another domain (or other questions of this one) for re-alignment."""
    source = domain.offline_source()
    wanted = recipe.benign_n if recipe.benign_n is not None else default_n
    drafts = source.drafts(random.Random(f"{recipe.seed}:benign"), None)
    chosen, _ = collect(domain, drafts, ("correct",), wanted, rejections, Deduper(recipe.near_dup_threshold), taken)
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
    recipe = Recipe.from_mapping(base.to_dict() | {"benign": False, "out": None, "push": None} | changes)
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
    write_text_atomic(out / CARD, render_card(result.manifest, get_domain(recipe.domain)))
    return result


def _duplicate_row(removal: Removal) -> dict[str, Any]:
    return {
        "reason": removal.reason,
        "score": removal.score,
        "duplicate_of": removal.duplicate_of,
        "matched_text": removal.matched_text,
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
