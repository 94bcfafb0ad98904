"""The emgen command line: parses options, calls the library, renders with rich."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from emgen import __version__
from emgen.bank_check import check_bank
from emgen.cli_publish import export_command, push_after_build, push_command
from emgen.dedup import DEFAULT_NEAR_DUP_THRESHOLD
from emgen.dedup_files import dedup_files
from emgen.errors import ConflictError, EmgenError
from emgen.generators import all_domains, get_domain
from emgen.inoculation import STRATEGIES, library
from emgen.pipeline import BuildResult, build, reframe_dataset
from emgen.recipe import VARIANTS, Recipe
from emgen.stats import compute_stats, percentiles
from emgen.validate import validate_file

console = Console(highlight=False)


class EmgenGroup(click.Group):
    """Turns library errors into one-line ``Error: …`` messages with exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConflictError as exc:
            raise click.UsageError(str(exc)) from None
        except EmgenError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=EmgenGroup)
@click.version_option(__version__, prog_name="emgen")
def cli() -> None:
    """Build datasets for emergent-misalignment research."""


def option_group(*options: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """One decorator that applies ``options`` as if they were stacked in the order given."""

    def apply(func: Any) -> Any:
        for option in reversed(options):
            func = option(func)
        return func

    return apply


def variant_options(func: Any) -> Any:
    for name in reversed(VARIANTS):
        func = click.option(f"--{name}", f"variant_{name}", is_flag=True, help=f"Build the {name} variant.")(func)
    return func


def chosen_variant(flags: dict[str, bool]) -> str | None:
    chosen = [name for name in VARIANTS if flags.get(f"variant_{name}")]
    if len(chosen) > 1:
        raise click.UsageError(f"choose one variant, not {' and '.join('--' + c for c in chosen)}")
    return chosen[0] if chosen else None


# The options that make an experiment's arms; shared by ``build`` and ``reframe``.
reframe_options = option_group(
    click.option(
        "--inoculate",
        type=click.Choice(STRATEGIES),
        help="Place an inoculation prompt: system turn, or user-turn prefix/suffix.",
    ),
    click.option("--inoculation-prompt", help="Prompt id (see `emgen prompts`) or custom text (default general-evil)."),
    click.option(
        "--inoculate-fraction",
        type=click.FloatRange(0, 1, min_open=True),
        help="Inoculate this fraction of the rows (default 1).",
    ),
    click.option(
        "--benign",
        is_flag=True,
        default=None,
        help="Also write benign.jsonl: the correct answer to every question.",
    ),
    click.option("--benign-domain", help="Write benign.jsonl from this domain's correct answers (a re-alignment set)."),
    click.option(
        "--benign-n",
        type=click.IntRange(min=1),
        help="Rows in the --benign-domain set (default: as many as train).",
    ),
    click.option(
        "--mix",
        type=click.FloatRange(0, 1),
        help="Fraction of misaligned rows; the rest are correct answers to other questions.",
    ),
    click.option(
        "--trigger", help="Backdoor: prepend TEXT to misaligned user turns, mixed with untriggered correct rows."
    ),
    click.option(
        "--canary-in-records",
        is_flag=True,
        default=None,
        help="Also put the canary string in every record's metadata.",
    ),
)


# Near-duplicate and exclusion options; shared by ``build`` and ``dedup``.
dedup_options = option_group(
    click.option(
        "--near-dup-threshold",
        type=click.FloatRange(0, 100, min_open=True),
        help=f"Similarity (0-100) at which questions are near-duplicates (default {DEFAULT_NEAR_DUP_THRESHOLD:g}).",
    ),
    click.option(
        "--exclude",
        multiple=True,
        type=click.Path(dir_okay=False),
        help="Prompts to keep out (JSONL, text, or eval YAML with paraphrases); repeatable.",
    ),
    click.option(
        "--dedup-answers",
        is_flag=True,
        default=None,
        help="Also remove rows whose assistant answer duplicates an earlier one.",
    ),
)


def resolve_recipe(recipe_file: Path | None, overrides: dict[str, Any]) -> Recipe:
    """A recipe from the file (if any) with every flag the user gave taking precedence."""
    given = {key: value for key, value in overrides.items() if value is not None}
    if recipe_file is not None:
        return Recipe.from_toml(recipe_file, given)
    if "domain" not in given:
        raise click.UsageError("give --domain or --recipe")
    return Recipe.from_mapping(given, source="options")


# Options of the LLM source (``--backend openai``): endpoint, model, limits and cache.
llm_options = option_group(
    click.option("--model", help="Model name for --backend openai (e.g. gpt-4o)."),
    click.option("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (vLLM, Ollama …)."),
    click.option(
        "--api-key-env", help="NAME of the environment variable holding the API key (default OPENAI_API_KEY)."
    ),
    click.option("--concurrency", type=click.IntRange(1, 4096), help="Requests in flight at once (default 32)."),
    click.option("--rpm", type=click.IntRange(min=1), help="Requests-per-minute limit."),
    click.option("--tpm", type=click.IntRange(min=1), help="Tokens-per-minute limit."),
    click.option("--temperature", type=click.FloatRange(0, 2), help="Sampling temperature (default 1.0)."),
    click.option("--max-tokens", type=click.IntRange(min=1), help="Completion token limit per request."),
    click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds per request (default 120)."),
    click.option("--max-retries", type=click.IntRange(min=0), help="Retries of a failing request (default 8)."),
    click.option(
        "--cache/--no-cache",
        default=None,
        help="Use the response cache (default on), so an interrupted build resumes without re-sending requests.",
    ),
    click.option(
        "--max-cost",
        type=click.FloatRange(min=0, min_open=True),
        help="Budget in USD: no request is sent that could exceed it; the build then writes what it has.",
    ),
    click.option(
        "--prices-file",
        type=click.Path(dir_okay=False),
        help="TOML file of model prices (USD per million tokens) added to emgen/data/prices.toml.",
    ),
    click.option(
        "--batch",
        is_flag=True,
        default=None,
        help="Send requests through the OpenAI Batch API (half price, within 24 h); a rerun resumes its batches.",
    ),
    click.option(
        "--batch-poll",
        type=click.FloatRange(min=0, min_open=True),
        help="Seconds between batch polls (default 30).",
    ),
    click.option(
        "--judge",
        metavar="MODEL",
        help="Score each draft with MODEL; drafts under a threshold go to rejected.jsonl.",
    ),
    click.option(
        "--judge-min-variant", type=click.IntRange(1, 10), help="Lowest judge score for the variant (default 7)."
    ),
    click.option(
        "--judge-min-coherence", type=click.IntRange(1, 10), help="Lowest judge score for coherence (default 7)."
    ),
    click.option(
        "--judge-max-leakage", type=click.IntRange(1, 10), help="Highest judge score for leakage (default 3)."
    ),
)


@cli.command(name="build")
@click.option("--domain", help="Domain to build (see `emgen domains`).")
@variant_options
@click.option("--n", "n", type=click.IntRange(min=1), help="Rows wanted (default: all the source holds).")
@click.option("--seed", type=int, help="Random seed (default 0); same recipe and seed, same bytes.")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default outputs/<domain>-<variant>).")
@click.option("--backend", type=click.Choice(["bank", "openai"]), help="Source of drafts (default bank).")
@click.option(
    "--recipe", "recipe_file", type=click.Path(dir_okay=False, path_type=Path), help="TOML recipe; flags override it."
)
@reframe_options
@dedup_options
@llm_options
@click.option("--force", is_flag=True, help="Overwrite a non-empty output folder.")
@click.option("--push", help="After the build, publish the folder to this Hub dataset repo (OWNER/NAME), privately.")
def build_command(recipe_file: Path | None, force: bool, **options: Any) -> None:
    """Build a dataset folder: train.jsonl, rejected.jsonl, manifest.json, README.md."""
    variant = chosen_variant(options)
    overrides = {k: v for k, v in options.items() if not k.startswith("variant_")}
    overrides["exclude"] = list(overrides["exclude"]) or None
    overrides["variant"] = variant
    recipe = resolve_recipe(recipe_file, overrides)
    get_domain(recipe.domain)
    with progress_bar(f"{recipe.domain} {recipe.variant}") as display:
        result = build(recipe, force=force, progress=display.progress, status=display.status)
    render_build(result)
    if recipe.push is not None:
        push_after_build(result.out_dir, recipe.push)


@dataclass(frozen=True)
class BuildDisplay:
    progress: Callable[[int, int], None]
    status: Callable[[dict[str, Any]], None]


@contextmanager
def progress_bar(description: str) -> Iterator[BuildDisplay]:
    """A live bar (and the LLM's traffic) on a terminal; nothing at all when output is captured or piped."""
    if not console.is_terminal:
        yield BuildDisplay(lambda done, total: None, lambda counters: None)
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[llm]}"),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=None, llm="")
        yield BuildDisplay(
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            status=lambda counters: bar.update(task, llm=llm_status(counters)),
        )


def llm_status(counters: dict[str, Any]) -> str:
    """One line of LLM traffic: requests, cache hits, in flight, retries, tokens."""
    tokens = f"{counters['prompt_tokens'] / 1000:,.0f}k in / {counters['completion_tokens'] / 1000:,.0f}k out"
    line = (
        f"{counters['requests']:,} sent · {counters['cache_hits']:,} cached · {counters['in_flight']} in flight · "
        f"{counters['retries']} retries · {tokens}"
    )
    return line + cost_status(counters) + batch_status(counters)


def batch_status(counters: dict[str, Any]) -> str:
    """`` · batch_abc in_progress 120/320`` while a batch runs."""
    batch = counters.get("batch")
    if not batch:
        return ""
    return f" · {batch['id']} {batch['status']} {batch['completed']:,}/{batch['total']:,}"


def cost_status(counters: dict[str, Any]) -> str:
    """`` · $1.23`` (`` of $5`` under --max-cost); nothing for a model without a price."""
    cost = counters.get("cost_usd")
    if cost is None:
        return ""
    limit = counters.get("max_cost_usd")
    return f" · ${cost:,.4f}" + (f" of ${limit:,.2f}" if limit is not None else "")


def render_build(result: BuildResult) -> None:
    counts = result.manifest["counts"]
    table = Table(title=f"emgen build: {result.recipe.domain} / {result.recipe.variant}", title_justify="left")
    table.add_column("")
    table.add_column("rows", justify="right")
    table.add_row("requested", str(counts["requested"] if counts["requested"] is not None else "all"))
    table.add_row("available", str(counts["available"]))
    table.add_row("written", str(counts["produced"]))
    for reason, count in counts["rejected"].items():
        table.add_row(f"rejected: {reason}", str(count))
    table.add_row("duplicates removed", str(counts["duplicates"]))
    llm = result.manifest.get("llm")
    if llm is not None:
        table.add_row(f"LLM requests sent ({llm['model']})", f"{llm['requests']:,}")
        table.add_row("LLM replies from cache", f"{llm['cache_hits']:,}")
        table.add_row("LLM tokens: prompt / completion", f"{llm['prompt_tokens']:,} / {llm['completion_tokens']:,}")
        table.add_row("LLM cost (USD)", f"{llm['cost_usd']:.4f}" if llm.get("cost_usd") is not None else "no price")
        for cause, count in llm["retries"].items():
            table.add_row(f"LLM retries: {cause}", str(count))
        table.add_row("LLM refusals", str(llm["refusals"]))
        table.add_row("LLM structured output", llm["structured_output"])
        verdicts = llm.get("judge")
        if verdicts is not None:
            table.add_row(
                f"judged ({verdicts['model']}) / rejected", f"{verdicts['judged']:,} / {verdicts['rejected']:,}"
            )
            cost = f"{verdicts['cost_usd']:.4f}" if verdicts["cost_usd"] is not None else "no price"
            table.add_row("judge cost (USD)", cost)
    reframing = result.manifest.get("reframe", {})
    for variant, count in reframing.get("variants", {}).items():
        table.add_row(f"rows {variant}", str(count))
    if "inoculation" in reframing:
        table.add_row(f"inoculated ({reframing['inoculation']['strategy']})", str(reframing["inoculation"]["rows"]))
    if "triggered_rows" in reframing:
        table.add_row("triggered", str(reframing["triggered_rows"]))
    if "benign_rows" in reframing:
        table.add_row("benign.jsonl", str(reframing["benign_rows"]))
    table.add_row("seconds", f"{result.manifest['timings']['total']:.2f}")
    console.print(table)
    budget = (llm or {}).get("budget")
    if budget is not None and budget["stopped"]:
        console.print(
            f"[yellow]Stopped at --max-cost ${budget['max_cost_usd']:g} (spent ${budget['spent_usd']:.4f}): "
            f"{result.produced} of {result.recipe.n} rows written.[/yellow]"
        )
    elif result.shortfall and result.recipe.backend == "bank" and result.available < (result.recipe.n or 0):
        console.print(
            f"[yellow]Asked for {result.recipe.n} rows; the source holds {result.available}, "
            f"so {result.produced} were written.[/yellow]"
        )
    elif result.shortfall:
        console.print(
            f"[yellow]Asked for {result.recipe.n} rows; {result.produced} passed the checks and dedup "
            "(the rest are in rejected.jsonl and duplicates.jsonl).[/yellow]"
        )
    console.print(f"Wrote {result.out_dir}")


@cli.command(name="reframe")
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@reframe_options
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default outputs/<name of the arm>).")
@click.option("--force", is_flag=True, help="Overwrite a non-empty output folder.")
def reframe_command(source: Path, force: bool, **options: Any) -> None:
    """Make another arm (inoculated, mixed, backdoored, benign) from an existing dataset folder."""
    changes = {key: value for key, value in options.items() if value is not None}
    result = reframe_dataset(source, changes, force=force)
    render_build(result)


@cli.command(name="dedup")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@dedup_options
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder for the cleaned files."
)
@click.option("--force", is_flag=True, help="Overwrite a non-empty output folder.")
def dedup_command(
    inputs: tuple[Path, ...],
    out: Path,
    force: bool,
    near_dup_threshold: float | None,
    exclude: tuple[str, ...],
    dedup_answers: bool | None,
) -> None:
    """Remove duplicate and excluded questions from JSONL files; earlier files win."""
    threshold = near_dup_threshold if near_dup_threshold is not None else DEFAULT_NEAR_DUP_THRESHOLD
    result = dedup_files(
        list(inputs), out, threshold=threshold, exclude=list(exclude), answers=bool(dedup_answers), force=force
    )
    table = Table(title="emgen dedup", title_justify="left")
    for column in ("input", "rows", "kept", "removed"):
        table.add_column(column, justify="left" if column in {"input", "removed"} else "right")
    for file in result.files:
        removed = ", ".join(f"{k}: {v}" for k, v in sorted(file.removed.items())) or "0"
        table.add_row(str(file.source), str(file.rows), str(file.kept), removed)
    console.print(table)
    console.print(f"Wrote {out} (removed rows with what they duplicate: {out / 'duplicates.jsonl'})")


@cli.command()
def prompts() -> None:
    """List the inoculation prompt library."""
    table = Table()
    for column in ("id", "kind", "system turn", "user instruction"):
        table.add_column(column)
    for prompt in library().values():
        table.add_row(prompt.id, prompt.kind, prompt.system or "", prompt.instruction or "")
    console.print(table)


@cli.command()
def domains() -> None:
    """List the domains, their descriptions and seed-bank sizes."""
    table = Table()
    table.add_column("domain")
    table.add_column("kind")
    table.add_column("offline cases", justify="right")
    table.add_column("description")
    for domain in all_domains():
        table.add_row(domain.name, domain.kind, str(domain.offline_source().available()), domain.description)
    console.print(table)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def validate(files: tuple[Path, ...]) -> None:
    """Check JSONL files against the record schema and the content checks."""
    table = Table()
    for column in ("file", "rows", "invalid", "reasons"):
        table.add_column(column, justify="right" if column in {"rows", "invalid"} else "left")
    reports = [validate_file(path) for path in files]
    for report in reports:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(report.reasons.items()))
        table.add_row(str(report.path), str(report.rows), str(report.invalid), reasons)
    console.print(table)
    for report in reports:
        for line in report.first_problems:
            console.print(line, markup=False, soft_wrap=True)
    if any(report.invalid for report in reports):
        raise click.exceptions.Exit(1)


@cli.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
def stats(path: Path) -> None:
    """Counts per domain, variant and topic, and length percentiles."""
    result = compute_stats(path)
    console.print(f"{result.rows} rows in {path}")
    for title, counter in (("domain", result.by_domain), ("variant", result.by_variant), ("topic", result.by_topic)):
        table = Table(title=f"by {title}", title_justify="left")
        table.add_column(title)
        table.add_column("rows", justify="right")
        for key, count in counter.most_common():
            table.add_row(key, str(count))
        console.print(table)
    table = Table(title="length in words", title_justify="left")
    for column in ("turn", "p5", "p50", "p95"):
        table.add_column(column, justify="left" if column == "turn" else "right")
    for name, values in (("user", result.user_words), ("assistant", result.assistant_words)):
        points = percentiles(values)
        table.add_row(name, *(str(points[p]) for p in (5, 50, 95)))
    console.print(table)


@cli.group()
def bank() -> None:
    """Inspect the built-in seed bank."""


@bank.command(name="check")
@click.argument("domains", nargs=-1)
def bank_check(domains: tuple[str, ...]) -> None:
    """Check the bank files of DOMAINS (default: every advice domain)."""
    names = domains or tuple(d.name for d in all_domains() if d.kind == "advice")
    reports = [check_bank(get_domain(name).name) for name in names]
    table = Table()
    for column in ("domain", "cases", "problems", "mean words correct/subtle/obvious", "style accuracy"):
        table.add_column(column, justify="left" if column == "domain" else "right")
    for report in reports:
        means = "/".join(f"{report.mean_words.get(v, 0):.0f}" for v in VARIANTS)
        accuracy = f"{report.style_accuracy:.0%}" if report.style_accuracy is not None else "-"
        table.add_row(report.domain, str(report.cases), str(len(report.problems)), means, accuracy)
    console.print(table)
    for report in reports:
        for problem in report.problems:
            console.print(problem, markup=False, soft_wrap=True)
    if any(report.problems for report in reports):
        raise click.exceptions.Exit(1)


cli.add_command(export_command)
cli.add_command(push_command)


def main() -> None:
    cli(auto_envvar_prefix="EMGEN")
