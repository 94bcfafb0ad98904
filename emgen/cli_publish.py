"""``emgen export`` and ``emgen push``: parse, call the library, render (registered on the group in cli.py)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from emgen.dataset_folder import SPLIT_FILES
from emgen.errors import EmgenError
from emgen.export import FORMATS, ExportOptions, ExportResult, export_dataset
from emgen.export.base import CHOSEN
from emgen.hub import GATING, PushRequest, PushResult, push
from emgen.tokens import DEFAULT_MODEL

console = Console(highlight=False)


def _format_help() -> str:
    return f"One of: {', '.join(sorted(FORMATS))} (see the README)."


@click.command(name="export")
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--format", "format_name", required=True, help=_format_help())
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output file (a folder for --format hf).")
@click.option("--split", type=click.Choice(list(SPLIT_FILES)), help="Rows to export: train (default) or benign.")
@click.option("--model", help=f"openai: the model whose token limit every row must fit (default {DEFAULT_MODEL}).")
@click.option("--models-file", type=click.Path(dir_okay=False), help="openai: TOML with more [models.NAME] limits.")
@click.option("--chosen", type=click.Choice(CHOSEN), help="trl-dpo: which answer is chosen (default correct).")
@click.option(
    "--pair-with",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="trl-dpo: pair with this folder's train.jsonl instead of SOURCE's benign.jsonl.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
def export_command(source: Path, format_name: str, out: Path, force: bool, **options: object) -> None:
    """Write the dataset folder SOURCE in a trainer's format."""
    result = export_dataset(source, format_name, out, ExportOptions(force=force, **options))  # type: ignore[arg-type]
    render_export(result)


def render_export(result: ExportResult) -> None:
    table = Table(title=f"emgen export: {result.format}", title_justify="left")
    table.add_column("")
    table.add_column("", justify="right")
    table.add_row("rows written", str(result.rows))
    details = result.details
    if "model" in details:
        table.add_row("model", details["model"])
        table.add_row("tokens (as OpenAI counts them)", f"{details['total_tokens']:,}")
        table.add_row("longest example", f"{details['max_tokens']:,} of {details['context_tokens']:,} tokens")
    if "skipped" in details:
        table.add_row("chosen", details["chosen"])
        table.add_row("rows without a partner", str(details["skipped"]["no_partner"]))
        table.add_row("pairs with two answers of the same kind", str(details["skipped"]["same_kind"]))
    for split, rows in details.get("splits", {}).items():
        table.add_row(f"{split} rows", str(rows))
    console.print(table)
    console.print(f"Wrote {result.out}", soft_wrap=True, markup=False)


@click.command(name="push")
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--repo", required=True, help="Hub dataset repo, OWNER/NAME.")
@click.option("--public", is_flag=True, help="Publish openly (default: the repo is private).")
@click.option(
    "--gated", type=click.Choice(GATING), help="Make users request access (approved automatically or by hand)."
)
@click.option("--endpoint", help="Hub URL, for a self-hosted Hub (default $HF_ENDPOINT, else https://huggingface.co).")
@click.option("--message", help="Commit message.")
@click.option("--dry-run", is_flag=True, help="Write the repo's files to --out instead of uploading them.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Folder for --dry-run.")
@click.option("--force", is_flag=True, help="With --dry-run: overwrite a non-empty --out folder.")
def push_command(folders: tuple[Path, ...], dry_run: bool, out: Path | None, **options: object) -> None:
    """Publish dataset folders to one Hugging Face Hub repo, one configuration each.

    The token comes from HF_TOKEN or your saved login (`hf auth login`); it is never printed or written.
    """
    if dry_run and out is None:
        raise click.UsageError("--dry-run needs --out DIR")
    if out is not None and not dry_run:
        raise click.UsageError("--out needs --dry-run (a real push uploads; it writes no folder)")
    result = push(PushRequest(folders=folders, dry_run_out=out, **options))  # type: ignore[arg-type]
    render_push(result)


def push_after_build(out_dir: Path, repo: str) -> None:
    """``emgen build … --push OWNER/NAME``: publish the folder just built, privately."""
    try:
        result = push(PushRequest(folders=(out_dir,), repo=repo))
    except EmgenError as exc:
        raise EmgenError(
            f"{exc} (the dataset is in {out_dir}; push it later with `emgen push {out_dir} --repo {repo}`)"
        ) from None
    render_push(result)


def render_push(result: PushResult) -> None:
    table = Table(title=f"emgen push: {result.repo}", title_justify="left")
    for column in ("configuration", "state", "rows"):
        table.add_column(column, justify="right" if column == "rows" else "left")
    for config in result.configs:
        rows = ", ".join(f"{split}: {count}" for split, count in config.rows.items())
        table.add_row(config.name, config.state, rows)
    console.print(table)
    visibility = "private" if result.private else "public"
    if result.gated:
        visibility += f", gated ({result.gated})"
    if result.folder is not None:
        console.print(
            f"Dry run: wrote {result.folder} ({len(result.uploaded)} files), the repo as it would be pushed",
            soft_wrap=True,
            markup=False,
        )
    elif result.commit is None:
        console.print(f"No changes: {result.url} is up to date ({visibility})", soft_wrap=True, markup=False)
    else:
        changes = f"{len(result.uploaded)} files uploaded, {len(result.deleted)} deleted"
        console.print(
            f"Committed {result.commit[:12]} to {result.url} ({visibility}; {changes})", soft_wrap=True, markup=False
        )
