"""Exports for trainers: one registered format per consumer (see :data:`FORMATS`)."""

from __future__ import annotations

from pathlib import Path

from emgen.dataset_folder import open_folder
from emgen.errors import ConflictError, OutputError
from emgen.export import chat, dpo, hf, openai  # noqa: F401  (each registers its formats)
from emgen.export.base import FORMATS, ExportError, ExportOptions, ExportResult, Format, get_format
from emgen.output import CARD, MANIFEST, prepare_output_dir

_OPTION_FLAGS = {
    "split": "--split",
    "model": "--model",
    "models_file": "--models-file",
    "chosen": "--chosen",
    "pair_with": "--pair-with",
}
_FOLDER_OUTPUTS = ("train.parquet", "benign.parquet", "manifest.json", "README.md")


def check_options(fmt: Format, options: ExportOptions) -> None:
    for field_name, flag in _OPTION_FLAGS.items():
        if getattr(options, field_name) is not None and field_name not in fmt.options:
            raise ConflictError(f"{flag} does not apply to --format {fmt.name}")


def prepare_output(fmt: Format, out: Path, force: bool) -> None:
    if fmt.folder:
        prepare_output_dir(out, force)
        for name in _FOLDER_OUTPUTS:
            (out / name).unlink(missing_ok=True)
        return
    if out.is_dir():
        raise OutputError(f"{out} is a folder; --format {fmt.name} writes one JSONL file")
    if out.exists() and not force:
        raise OutputError(f"{out} already exists; use --force to overwrite it")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write to {out.parent}: {exc.strerror}") from None


def export_dataset(
    source: str | Path, format_name: str, out: str | Path, options: ExportOptions | None = None
) -> ExportResult:
    """Write the dataset folder ``source`` in ``format_name`` to ``out`` (a file, or a folder for hf)."""
    fmt = get_format(format_name)
    options = options or ExportOptions()
    check_options(fmt, options)
    folder = open_folder(source)
    out = Path(out)
    protected = [folder.path, *folder.splits.values(), folder.path / MANIFEST, folder.path / CARD]
    if any(out.resolve() == path.resolve() for path in protected):
        raise OutputError(f"{out} is part of the dataset being exported; write the export somewhere else")
    prepare_output(fmt, out, options.force)
    try:
        return fmt.write(folder, out, options)
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc.strerror or exc}") from None


__all__ = ["FORMATS", "ExportError", "ExportOptions", "ExportResult", "Format", "export_dataset", "get_format"]
