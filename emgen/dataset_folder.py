"""An emgen dataset folder as exports and the Hub read it: manifest, recipe and splits, checked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emgen.errors import EmgenError, RecipeError
from emgen.output import file_info, read_manifest
from emgen.recipe import Recipe
from emgen.records import Record, read_records

SPLIT_FILES = {"train": "train.jsonl", "benign": "benign.jsonl"}
"""The files of a dataset folder that hold training rows, by split name."""


@dataclass(frozen=True)
class DatasetFolder:
    path: Path
    manifest: dict[str, Any]
    recipe: Recipe
    splits: dict[str, Path]

    @property
    def config_name(self) -> str:
        """What the data is (domain, variant, reframing), independent of where the folder lives."""
        return self.recipe.folder_name()

    def records(self, split: str = "train") -> list[Record]:
        if split not in self.splits:
            present = ", ".join(self.splits)
            raise EmgenError(f"{self.path} has no {split} split ({SPLIT_FILES.get(split, split)}); it has: {present}")
        return list(read_records(self.splits[split]))


def open_folder(path: str | Path) -> DatasetFolder:
    """Read a folder made by ``emgen build`` or ``emgen reframe``.

    Every split file must match the sha256 its manifest records, so counts and cards made from
    the manifest describe exactly the rows that are exported or published.
    """
    path = Path(path)
    if not path.is_dir():
        raise EmgenError(f"{path} is not a folder")
    manifest = read_manifest(path)
    try:
        recipe = Recipe.from_mapping(manifest["recipe"], source=str(path / "manifest.json"))
    except RecipeError as exc:
        raise EmgenError(f"{path}: the manifest's recipe is not usable ({exc})") from None
    splits: dict[str, Path] = {}
    for split, name in SPLIT_FILES.items():
        file = path / name
        if not file.exists():
            continue
        recorded = manifest["files"].get(name)
        if recorded is None:
            raise EmgenError(f"{file} is not listed in {path / 'manifest.json'}")
        if file_info(file)["sha256"] != recorded["sha256"]:
            raise EmgenError(f"{file} does not match its manifest (changed after the build?); rebuild the folder")
        splits[split] = file
    if "train" not in splits:
        raise EmgenError(f"{path} has no {SPLIT_FILES['train']}")
    return DatasetFolder(path, manifest, recipe, splits)
