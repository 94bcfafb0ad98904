"""A dataset repo laid out on disk: one configuration per dataset folder, and the card.

The same layout serves ``emgen push`` (staged, then uploaded), ``emgen push --dry-run`` (written
where the user asks) and ``emgen export --format hf`` (one configuration at the top level).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from emgen.dataset_folder import SPLIT_FILES, DatasetFolder
from emgen.errors import EmgenError
from emgen.export.parquet import write_parquet
from emgen.hub_card import CardConfig, render_hub_card
from emgen.output import CARD, MANIFEST, write_text_atomic

DATA_SUFFIX = ".parquet"


@dataclass(frozen=True)
class StagedConfig:
    name: str
    files: dict[str, Path]
    """Path in the repo -> the local file holding its bytes."""
    card: CardConfig


def config_names(folders: list[DatasetFolder]) -> list[str]:
    """Each folder's configuration name; two folders that make the same one are an error."""
    seen: dict[str, DatasetFolder] = {}
    for folder in folders:
        other = seen.get(folder.config_name)
        if other is not None:
            raise EmgenError(
                f"{other.path} and {folder.path} both make configuration {folder.config_name!r} "
                "(same domain, variant and reframing); push them to different repos"
            )
        seen[folder.config_name] = folder
    return list(seen)


def split_files(prefix: str, splits: list[str]) -> dict[str, str]:
    return {split: f"{prefix}{split}{DATA_SUFFIX}" for split in splits}


def stage_config(folder: DatasetFolder, root: Path, prefix: str, name: str | None = None) -> StagedConfig:
    """Write ``folder``'s splits as parquet and its manifest under ``root/prefix``."""
    name = name or folder.config_name
    target = root / prefix if prefix else root
    target.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    rows: dict[str, int] = {}
    data_files = split_files(prefix, list(folder.splits))
    for split, repo_path in data_files.items():
        rows[split] = write_parquet(root / repo_path, folder.records(split))
        files[repo_path] = root / repo_path
    manifest_path = f"{prefix}{MANIFEST}"
    shutil.copyfile(folder.path / MANIFEST, root / manifest_path)
    files[manifest_path] = root / manifest_path
    return StagedConfig(name, files, CardConfig(name, data_files, rows, folder.manifest))


def remote_config(name: str, manifest_bytes: bytes, data_paths: list[str]) -> CardConfig:
    """A configuration already in the repo, described from its uploaded manifest."""
    manifest = json.loads(manifest_bytes)
    splits = [s for s in SPLIT_FILES if f"{name}/{s}{DATA_SUFFIX}" in data_paths]
    rows = {s: manifest["files"][SPLIT_FILES[s]]["rows"] for s in splits}
    return CardConfig(name, split_files(f"{name}/", splits), rows, manifest)


def write_card(
    root: Path, configs: list[CardConfig], repo_id: str | None, endpoint: str | None, title: str | None = None
) -> Path:
    path = root / CARD
    write_text_atomic(path, render_hub_card(configs, repo_id, endpoint, title))
    return path
