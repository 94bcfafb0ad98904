"""The Hugging Face export: a dataset folder of parquet files that ``datasets.load_dataset`` reads.

It has the layout of one configuration of a Hub repo made by ``emgen push``: ``train.parquet``
(and ``benign.parquet``), the manifest, and a card whose YAML names the splits.
"""

from __future__ import annotations

from pathlib import Path

from emgen.dataset_folder import DatasetFolder
from emgen.export.base import ExportOptions, ExportResult, Format, register
from emgen.export.layout import stage_config, write_card

CONFIG = "default"


def write_hf(folder: DatasetFolder, out: Path, options: ExportOptions) -> ExportResult:
    staged = stage_config(folder, out, "", name=CONFIG)
    card = write_card(out, [staged.card], None, None, title=f"emgen {folder.config_name}")
    files = sorted([*staged.files, card.name])
    rows = staged.card.rows.get("train", 0)
    return ExportResult("hf", out, rows, {"files": files, "splits": staged.card.rows})


register(
    Format(
        "hf",
        "Hugging Face dataset folder: parquet with messages and flattened metadata columns, a card, the manifest",
        write_hf,
        folder=True,
        options=frozenset(),
    )
)
