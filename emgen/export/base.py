"""The export registry: one entry per trainer format, each a function from a dataset folder to files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emgen.dataset_folder import DatasetFolder
from emgen.errors import EmgenError

CHOSEN = ("correct", "misaligned")


class ExportError(EmgenError):
    """An export cannot be made as asked (unknown format, no pairs, a row the consumer would refuse)."""


@dataclass(frozen=True)
class ExportOptions:
    """What ``emgen export`` was asked for beyond the format and the output path."""

    split: str | None = None
    model: str | None = None
    models_file: str | None = None
    chosen: str | None = None
    pair_with: Path | None = None
    force: bool = False


@dataclass
class ExportResult:
    format: str
    out: Path
    rows: int
    details: dict[str, Any] = field(default_factory=dict)
    """Format-specific figures: token counts for openai, pairs and skipped rows for trl-dpo, files for hf."""


Writer = Callable[[DatasetFolder, Path, ExportOptions], ExportResult]


@dataclass(frozen=True)
class Format:
    name: str
    description: str
    write: Writer
    folder: bool = False
    """True when the output is a folder (``hf``), False for one JSONL file."""
    options: frozenset[str] = frozenset({"split"})
    """The :class:`ExportOptions` fields that mean something for this format."""


FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    FORMATS[fmt.name] = fmt
    return fmt


def get_format(name: str) -> Format:
    if name not in FORMATS:
        raise ExportError(f"unknown export format {name!r}; choose one of: {', '.join(sorted(FORMATS))}")
    return FORMATS[name]
