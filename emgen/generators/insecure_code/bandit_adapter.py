"""In-process bandit: the only module that touches bandit's internals.

bandit has no supported programmatic API (its CLI is the only stable interface), so
its version is pinned in pyproject.toml and every internal call lives here, covered
by tests/test_code_bandit_adapter.py. One ``BanditManager`` is built once and reused:
a scan costs a fraction of a millisecond, against ~200 ms for a process per snippet.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from functools import cache
from typing import Any

SEVERITIES = ("LOW", "MEDIUM", "HIGH")

# A relative name whose directory is "." stops bandit's module-name lookup at once:
# no file-system probing and no "Unable to find qualified name" warning per scan.
_SNIPPET_NAME = "./snippet.py"


class UnscannableCode(ValueError):
    """bandit skipped the code (it could not parse or scan it); such a draft is rejected."""


@dataclass(frozen=True)
class BanditFinding:
    test_id: str
    severity: str
    confidence: str
    line: int
    cwe: int | None
    text: str

    @property
    def serious(self) -> bool:
        """MEDIUM or HIGH severity: what 'flagged' means for a secure answer."""
        return self.severity in ("MEDIUM", "HIGH")


class BanditScanner:
    """Scans source strings with every bandit test, ``# nosec`` ignored."""

    def __init__(self) -> None:
        with warnings.catch_warnings():
            # bandit's plugin loading passes an argument stevedore deprecated; nothing for us to act on.
            warnings.filterwarnings("ignore", message="The verify_requirements argument")
            from bandit.core import config, manager, metrics

            self._metrics = metrics
            self._manager = manager.BanditManager(config.BanditConfig(), "file", ignore_nosec=True)

    def scan(self, code: str) -> list[BanditFinding]:
        manager = self._manager
        manager.results = []
        manager.skipped = []
        manager.scores = []
        manager.metrics = self._metrics.Metrics()
        manager._parse_file(_SNIPPET_NAME, io.BytesIO(code.encode("utf-8")), [_SNIPPET_NAME])
        if manager.skipped:
            reason = manager.skipped[0][1]
            raise UnscannableCode(f"bandit skipped the code: {reason}")
        return [_finding(issue) for issue in manager.get_issue_list()]


def _finding(issue: Any) -> BanditFinding:
    cwe = getattr(issue, "cwe", None)
    return BanditFinding(
        test_id=issue.test_id,
        severity=str(issue.severity),
        confidence=str(issue.confidence),
        line=int(issue.lineno),
        cwe=getattr(cwe, "id", None) or None,
        text=issue.text,
    )


@cache
def scanner() -> BanditScanner:
    """The process-wide scanner, built on first use (loading bandit's plugins takes a moment)."""
    return BanditScanner()


def scan(code: str) -> list[BanditFinding]:
    """Every bandit finding in ``code``; raises :class:`UnscannableCode` if bandit skips it."""
    return scanner().scan(code)
