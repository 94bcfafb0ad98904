import sqlite3
import sys

import pytest

from emgen.llm import cache as cache_module
from emgen.llm.cache import CACHE_FILE, CacheError, ResponseCache, cache_dir, migrate, request_key


def test_the_cache_folder_comes_from_the_environment(tmp_path, monkeypatch):
    assert cache_dir() == tmp_path / "emgen-cache"
    monkeypatch.delenv("EMGEN_CACHE_DIR")
    if sys.platform.startswith("linux"):
        assert cache_dir() == tmp_path / "home" / ".cache" / "emgen"


def test_keys_ignore_key_order_and_spacing_but_not_content():
    a = request_key({"model": "m", "messages": [{"role": "user", "content": "hi"}], "seed": 1})
    b = request_key({"seed": 1, "messages": [{"content": "hi", "role": "user"}], "model": "m"})
    assert a == b and len(a) == 64
    assert a != request_key({"model": "m", "messages": [{"role": "user", "content": "hi"}], "seed": 2})
    assert a != request_key({"model": "m2", "messages": [{"role": "user", "content": "hi"}], "seed": 1})


def test_replies_persist_across_processes_opening_the_file(tmp_path):
    first = ResponseCache()
    first.put("k1", "m", '{"model": "m"}', '{"choices": []}', 10, 5)
    first.close()
    second = ResponseCache()
    assert second.get("k1") == '{"choices": []}'
    assert second.get("missing") is None
    assert len(second) == 1
    second.close()
    db = sqlite3.connect(tmp_path / "emgen-cache" / CACHE_FILE)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    row = db.execute("SELECT model, prompt_tokens, completion_tokens FROM responses").fetchone()
    assert row == ("m", 10, 5)


def test_migrations_run_once_and_are_recorded(tmp_path):
    db = sqlite3.connect(tmp_path / "c.sqlite", isolation_level=None)
    assert migrate(db) == ["m001_responses"]
    assert migrate(db) == []
    names = [row[0] for row in db.execute("SELECT name FROM _migrations")]
    assert names == ["m001_responses"]


def test_a_new_migration_is_applied_to_an_existing_cache(tmp_path, monkeypatch):
    ResponseCache().put("k", "m", "{}", '{"choices": [1]}', 1, 1)

    def m002_add_note(db):
        db.execute("ALTER TABLE responses ADD COLUMN note TEXT")

    monkeypatch.setattr(cache_module, "MIGRATIONS", [*cache_module.MIGRATIONS, m002_add_note])
    cache = ResponseCache()
    assert cache.get("k") == '{"choices": [1]}'
    db = sqlite3.connect(cache.path)
    assert "note" in [row[1] for row in db.execute("PRAGMA table_info(responses)")]
    assert [r[0] for r in db.execute("SELECT name FROM _migrations ORDER BY name")] == [
        "m001_responses",
        "m002_add_note",
    ]


def test_a_failing_migration_leaves_the_cache_as_it_was(tmp_path, monkeypatch):
    ResponseCache().close()

    def m002_broken(db):
        db.execute("ALTER TABLE responses ADD COLUMN half TEXT")
        raise sqlite3.OperationalError("boom")

    monkeypatch.setattr(cache_module, "MIGRATIONS", [*cache_module.MIGRATIONS, m002_broken])
    with pytest.raises(CacheError, match="boom"):
        ResponseCache()
    db = sqlite3.connect(tmp_path / "emgen-cache" / CACHE_FILE)
    assert "half" not in [row[1] for row in db.execute("PRAGMA table_info(responses)")]


def test_an_unusable_cache_folder_is_a_one_line_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("EMGEN_CACHE_DIR", str(blocker / "sub"))
    with pytest.raises(
        CacheError, match=r"^cannot open the response cache .*; set EMGEN_CACHE_DIR .* or use --no-cache$"
    ):
        ResponseCache()


def test_a_corrupt_cache_file_is_a_one_line_error(tmp_path):
    folder = tmp_path / "emgen-cache"
    folder.mkdir()
    (folder / CACHE_FILE).write_bytes(b"this is not a database" * 100)
    with pytest.raises(CacheError, match="cannot open the response cache"):
        ResponseCache()
