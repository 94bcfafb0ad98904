"""The output folder: preparing it, describing its files, writing the manifest."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

from emgen.errors import OutputError
from emgen.records import AtomicFile
from emgen.resources import schema_errors

MANIFEST = "manifest.json"
_INTERRUPTED = re.compile(r"^\.[^/]+\.[a-z0-9_]{6,}\.tmp$|^\.emgen-write-test$")
CARD = "README.md"


def prepare_output_dir(path: Path, force: bool, keep: Collection[str] = ()) -> None:
    """Create ``path``; refuse a non-empty one unless ``force``, then clear only emgen's files.

    ``keep`` names the state files a build resumes from (such as ``batch-state.json`` of a build
    interrupted while its batches ran): a folder holding nothing else is the same build continuing,
    not a non-empty folder, and ``force`` leaves them in place.
    """
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path} exists and is not a folder")
    if path.is_dir():
        remove_interrupted(path)
    if path.is_dir() and any(entry.name not in keep for entry in path.iterdir()):
        if not force:
            raise OutputError(f"{path} already exists and is not empty; use --force to overwrite it")
        for name in previous_outputs(path):
            (path / name).unlink(missing_ok=True)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".emgen-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"cannot write to {path}: {exc.strerror}") from None


def remove_interrupted(path: Path) -> None:
    """Delete the temporary files of a build that was killed, so the same command can resume it."""
    for entry in path.iterdir():
        if _INTERRUPTED.match(entry.name) and entry.is_file():
            entry.unlink(missing_ok=True)


def previous_outputs(path: Path) -> list[str]:
    """Files an earlier build wrote here, as its manifest lists them, plus manifest and card."""
    names = [MANIFEST, CARD]
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        names.extend(name for name in manifest.get("files", {}) if "/" not in name and name != "..")
    except (OSError, ValueError, AttributeError):
        pass
    return names


def file_info(path: Path) -> dict[str, int | str]:
    digest = hashlib.sha256()
    rows = 0
    with path.open("rb") as handle:
        for line in handle:
            digest.update(line)
            if line.strip():
                rows += 1
    return {"sha256": digest.hexdigest(), "rows": rows, "bytes": path.stat().st_size}


def write_text_atomic(path: Path, text: str) -> None:
    try:
        with AtomicFile(path) as handle:
            handle.write(text)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror}") from None


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    errors = schema_errors("manifest", manifest)
    if errors:
        raise AssertionError(f"emgen built an invalid manifest: {errors[0]}")
    write_text_atomic(path / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OutputError(f"{folder} has no {MANIFEST}: is it an emgen dataset folder?") from None
    except ValueError as exc:
        raise OutputError(f"{path}: not valid JSON ({exc})") from None
    errors = schema_errors("manifest", manifest)
    if errors:
        raise OutputError(f"{path}: {errors[0]}")
    return manifest


def disk_error(path: Path, exc: OSError) -> OutputError:
    reason = exc.strerror or str(exc)
    return OutputError(f"cannot write {path}: {reason}")


__all__ = [
    "CARD",
    "MANIFEST",
    "disk_error",
    "file_info",
    "prepare_output_dir",
    "read_manifest",
    "write_manifest",
    "write_text_atomic",
]
