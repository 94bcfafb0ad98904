"""The response cache: completed LLM replies in SQLite, so an interrupted build resumes without paying twice.

Keys are the sha256 of the canonical JSON of everything that changes a reply (endpoint, model,
messages, parameters, response format, seed, sample number). The database runs in WAL mode and
every reply is committed as it arrives, so a build killed at any point (Ctrl-C, kill -9, a crash)
keeps every reply it had received. The schema evolves through :data:`MIGRATIONS`, never by asking
users to delete their cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from emgen.errors import EmgenError

CACHE_ENV = "EMGEN_CACHE_DIR"
CACHE_FILE = "llm-cache.sqlite"

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = []
migration = MIGRATIONS.append


class CacheError(EmgenError):
    """The response cache cannot be opened or written."""


def cache_dir() -> Path:
    """``$EMGEN_CACHE_DIR`` if set, else the platform's user cache folder + ``emgen``."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "emgen"


def request_key(parts: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of ``parts`` (key order and spacing do not matter)."""
    canonical = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@migration
def m001_responses(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE responses (
            key TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            request TEXT NOT NULL,
            response TEXT NOT NULL,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        )"""
    )


def migrate(db: sqlite3.Connection, migrations: list[Migration] | None = None) -> list[str]:
    """Apply every migration not yet recorded in ``_migrations``; returns the names applied.

    Runs inside one IMMEDIATE transaction so two processes opening a new cache at once do not
    both apply the same migration.
    """
    migrations = MIGRATIONS if migrations is None else migrations
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        done = {row[0] for row in db.execute("SELECT name FROM _migrations")}
        applied = []
        for step in migrations:
            if step.__name__ in done:
                continue
            step(db)
            db.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                (step.__name__, datetime.now(timezone.utc).isoformat(timespec="seconds")),
            )
            applied.append(step.__name__)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return applied


class ResponseCache:
    """Reply bodies by request key, in ``<folder>/llm-cache.sqlite``."""

    def __init__(self, folder: Path | None = None) -> None:
        self.path = (folder or cache_dir()) / CACHE_FILE
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            migrate(self._db)
        except (OSError, sqlite3.Error) as exc:
            raise CacheError(
                f"cannot open the response cache {self.path} ({exc}); set {CACHE_ENV} to another folder or use --no-cache"
            ) from None

    def get(self, key: str) -> str | None:
        row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(
        self, key: str, model: str, request: str, response: str, prompt_tokens: int, completion_tokens: int
    ) -> None:
        """Store a reply; committed before this returns, so it survives the process being killed."""
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    model,
                    request,
                    response,
                    prompt_tokens,
                    completion_tokens,
                    datetime.now(timezone.utc).isoformat(timespec="seconds"),
                ),
            )
        except sqlite3.Error as exc:
            raise CacheError(f"cannot write the response cache {self.path} ({exc})") from None

    def __len__(self) -> int:
        return self._db.execute("SELECT count(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self._db.close()
