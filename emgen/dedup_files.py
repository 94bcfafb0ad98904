"""``emgen dedup``: duplicate and excluded-prompt removal over existing JSONL files.

Files are read in the order given and the first occurrence of a question wins, so
``emgen dedup test.jsonl train.jsonl`` keeps the test set whole and cleans train against
it. Rows sharing a ``pair_id`` (the variants and benign counterpart of one question) are
kept or removed together. Every removed row is listed in ``duplicates.jsonl`` with the row
it duplicates, so each decision can be audited.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emgen.dedup import DEFAULT_NEAR_DUP_THRESHOLD, Deduper, Match, question_text
from emgen.errors import EmgenError, InvalidRecordError
from emgen.exclude import read_exclude_file
from emgen.output import prepare_output_dir, write_text_atomic
from emgen.records import AtomicFile, dumps, record_errors

REPORT = "dedup.json"
DUPLICATES = "duplicates.jsonl"


@dataclass
class FileResult:
    source: Path
    output: Path
    sha256: str
    rows: int = 0
    kept: int = 0
    removed: Counter[str] = field(default_factory=Counter)


@dataclass
class DedupResult:
    out_dir: Path
    files: list[FileResult]
    report: dict[str, Any]


@dataclass
class _Row:
    line: int
    raw: bytes
    record: dict[str, Any]
    group: str


def _read_rows(path: Path) -> tuple[list[_Row], str]:
    """The rows of ``path`` and the sha256 of its bytes, in one read."""
    rows = []
    digest = hashlib.sha256()
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise EmgenError(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        for number, raw in enumerate(handle, 1):
            digest.update(raw)
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise InvalidRecordError(f"{path}:{number}: not valid JSON") from None
            if not isinstance(record, dict) or not any(
                isinstance(t, dict) and t.get("role") == "user" for t in record.get("messages") or []
            ):
                raise InvalidRecordError(f"{path}:{number}: no messages with a user turn")
            if "metadata" in record:
                errors = record_errors(record)
                if errors:
                    raise InvalidRecordError(f"{path}:{number}: {errors[0]}")
            pair = (record.get("metadata") or {}).get("pair_id")
            rows.append(_Row(number, raw if raw.endswith(b"\n") else raw + b"\n", record, pair or f"{path}:{number}"))
    return rows, digest.hexdigest()


def _input_files(inputs: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in inputs:
        if path.is_dir():
            found = [path / name for name in ("train.jsonl", "benign.jsonl") if (path / name).exists()]
            if not found:
                raise EmgenError(f"{path}: no train.jsonl or benign.jsonl in this folder")
            files.extend(found)
        else:
            files.append(path)
    return files


def _output_names(files: list[Path]) -> list[str]:
    names = [f.name for f in files]
    if len(set(names)) == len(names):
        return names
    return [f"{i}-{f.parent.name or 'root'}-{f.name}" for i, f in enumerate(files, 1)]


def dedup_files(
    inputs: list[Path],
    out: Path,
    *,
    threshold: float = DEFAULT_NEAR_DUP_THRESHOLD,
    exclude: list[str] | None = None,
    answers: bool = False,
    force: bool = False,
) -> DedupResult:
    files = _input_files(inputs)
    excluded = [read_exclude_file(path) for path in exclude or []]
    read = [_read_rows(path) for path in files]
    prepare_output_dir(out, force)
    deduper = Deduper(threshold, [p for f in excluded for p in f.prompts])
    answer_deduper = Deduper(threshold) if answers else None
    decided: dict[str, tuple[str, Match] | None] = {}
    results = []
    with AtomicFile(out / DUPLICATES) as duplicates:
        for path, name, (rows, sha256) in zip(files, _output_names(files), read, strict=True):
            result = FileResult(path, out / name, sha256)
            with AtomicFile(out / name) as kept_file:
                for row in rows:
                    result.rows += 1
                    key = f"{path}:{row.line}"
                    if row.group not in decided:
                        decided[row.group] = deduper.check(key, question_text(row.record))
                    found = decided[row.group]
                    if found is None and answer_deduper is not None:
                        answer = next(
                            t["content"] for t in reversed(row.record["messages"]) if t["role"] == "assistant"
                        )
                        hit = answer_deduper.check(key, answer)
                        found = (f"answer-{hit[0]}", hit[1]) if hit else None
                    if found is None:
                        kept_file.write(row.raw.decode("utf-8"))
                        result.kept += 1
                        continue
                    reason, match = found
                    result.removed[reason] += 1
                    duplicates.write(
                        dumps(
                            {
                                "file": str(path),
                                "line": row.line,
                                "reason": reason,
                                "score": match.score,
                                "duplicate_of": match.key,
                                "matched_text": match.text,
                                "record": row.record,
                            }
                        )
                        + "\n"
                    )
            results.append(result)
    report = {
        "near_dup_threshold": threshold,
        "dedup_answers": answers,
        "inputs": [
            {
                "path": str(r.source),
                "output": r.output.name,
                "sha256": r.sha256,
                "rows": r.rows,
                "kept": r.kept,
                "removed": dict(sorted(r.removed.items())),
            }
            for r in results
        ],
        "exclude_files": {f.path: {"sha256": f.sha256, "prompts": len(f.prompts)} for f in excluded},
    }
    write_text_atomic(out / REPORT, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return DedupResult(out, results, report)
