"""``emgen validate``: schema and content checks over existing JSONL files."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from emgen.checks import Problem, check_record
from emgen.errors import UnknownDomainError
from emgen.generators import get_domain


@dataclass
class FileReport:
    path: Path
    rows: int = 0
    invalid: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    first_problems: list[str] = field(default_factory=list)

    def note(self, line: int, problems: list[Problem], keep: int = 5) -> None:
        self.invalid += 1
        self.reasons.update({p.reason for p in problems})
        if len(self.first_problems) < keep:
            self.first_problems.append(f"{self.path}:{line}: {problems[0].reason}: {problems[0].detail}")


def _is_prose(domain: object) -> bool:
    """Whether a row's answers are prose (advice) rather than code; unknown domains count as prose."""
    try:
        return get_domain(str(domain)).kind == "advice"
    except UnknownDomainError:
        return True


def validate_file(path: Path) -> FileReport:
    """Check every line of ``path``; a bad line is counted and reported, never fatal."""
    report = FileReport(path)
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            report.rows += 1
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                report.note(number, [Problem("encoding", "not UTF-8 text")])
                continue
            except json.JSONDecodeError as exc:
                report.note(number, [Problem("json", exc.msg)])
                continue
            domain = record.get("metadata", {}).get("domain") if isinstance(record, dict) else None
            problems = check_record(record, prose=_is_prose(domain))
            if problems:
                report.note(number, problems)
    return report
