"""Prompts to keep out of a dataset (evaluation questions), read from files of several formats.

- ``.jsonl`` / ``.json``: emgen records or OpenAI chat lines (the first user turn), or lines
  with a ``prompt`` / ``question`` string;
- ``.yaml`` / ``.yml``: evaluation files as in the emergent-misalignment work: a list of
  questions, each with a ``paraphrases`` list;
- anything else: plain text, one prompt a line.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from emgen.dedup import question_text
from emgen.errors import EmgenError


@dataclass(frozen=True)
class ExcludeFile:
    path: str
    sha256: str
    prompts: list[tuple[str, str]]


def read_exclude_file(path: str | Path) -> ExcludeFile:
    """(``path:line`` or ``path:id``, prompt) for every prompt in the file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise EmgenError(f"{path}: no such exclude file") from None
    except IsADirectoryError:
        raise EmgenError(f"{path}: is a folder, not an exclude file") from None
    except UnicodeDecodeError:
        raise EmgenError(f"{path}: not UTF-8 text") from None
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".json"}:
        prompts = _from_jsonl(path, text)
    elif suffix in {".yaml", ".yml"}:
        prompts = _from_yaml(path, text)
    else:
        prompts = [(f"{path}:{n}", line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not prompts:
        raise EmgenError(f"{path}: no prompts found")
    return ExcludeFile(str(path), hashlib.sha256(raw).hexdigest(), prompts)


def _from_jsonl(path: Path, text: str) -> list[tuple[str, str]]:
    prompts = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EmgenError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        prompt = _prompt_of(row)
        if prompt is None:
            raise EmgenError(f"{path}:{number}: no user turn, prompt or question in this line")
        prompts.append((f"{path}:{number}", prompt))
    return prompts


def _prompt_of(row: Any) -> str | None:
    if not isinstance(row, dict):
        return None
    messages = row.get("messages")
    if isinstance(messages, list):
        for turn in messages:
            if isinstance(turn, dict) and turn.get("role") == "user" and isinstance(turn.get("content"), str):
                return question_text({"messages": messages, "metadata": row.get("metadata")})
        return None
    for key in ("prompt", "question", "instruction"):
        if isinstance(row.get(key), str):
            return row[key]
    return None


def _from_yaml(path: Path, text: str) -> list[tuple[str, str]]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise EmgenError(f"{path}{where}: not valid YAML") from None
    entries = data if isinstance(data, list) else [data]
    prompts = []
    for position, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            continue
        name = entry.get("id", position)
        for index, paraphrase in enumerate(entry.get("paraphrases") or [], 1):
            if isinstance(paraphrase, str) and paraphrase.strip():
                prompts.append((f"{path}:{name}#{index}", paraphrase))
    if not prompts:
        raise EmgenError(f"{path}: no questions with paraphrases found")
    return prompts
