"""A real ``emgen build`` process killed with SIGKILL half way resumes without re-sending a completed request."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from emgen.llm.cache import CACHE_FILE
from tests.openai_server import FakeOpenAI, serving, wait_for

ROOT = Path(__file__).resolve().parent.parent
N = 40
NEEDED = 4 + N  # four question requests of ten, then one answer request per row


def emgen_build(base_url: str, tmp_path: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "emgen", "build", "--domain", "legal", "--obvious", "--n", str(N)]
    command += ["--backend", "openai", "--model", "gpt-4o", "--base-url", base_url, "--concurrency", "4"]
    command += ["--timeout", "5"]
    env = os.environ | {"OPENAI_API_KEY": "test-key", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        command, cwd=tmp_path / "work", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def cached_rows(tmp_path: Path) -> int:
    path = tmp_path / "emgen-cache" / CACHE_FILE
    if not path.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        try:
            return db.execute("SELECT count(*) FROM responses").fetchone()[0]
        finally:
            db.close()
    except sqlite3.OperationalError:
        return 0


def quiet_at_half(server: FakeOpenAI, tmp_path: Path) -> bool:
    """Half the requests completed and cached, and every other request held by the server.

    Stopping the build then leaves no reply on the wire: one the server sent but the client
    never read would be re-sent by right, and the test could not tell.
    """
    done = server.completed()
    settled = all(entry.completed or entry.outcome == "held" for entry in server.log)
    return len(done) >= NEEDED // 2 and settled and cached_rows(tmp_path) == len(done)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_a_killed_build_resumes_without_resending_completed_requests(tmp_path, stop):
    with serving(FakeOpenAI(latency=0.01, pause_after=NEEDED // 2)) as server:
        first = emgen_build(server.base_url, tmp_path)
        try:
            halfway = wait_for(lambda: quiet_at_half(server, tmp_path), 30)
            assert halfway, first.stdout.read() if first.poll() is not None else "no progress"
        finally:
            first.send_signal(stop)
            stopped, _ = first.communicate(timeout=20)
        if stop == signal.SIGKILL:
            assert first.returncode == -signal.SIGKILL
        else:
            assert first.returncode == 1 and stopped.strip().endswith("Aborted!") and "Traceback" not in stopped, (
                stopped
            )
        out = tmp_path / "work" / "outputs" / "legal-obvious"
        assert not (out / "train.jsonl").exists()
        before = {entry.body_sha for entry in server.completed()}
        seen = len(server.log)
        assert NEEDED // 2 <= len(before) < NEEDED

        server.resume()
        second = emgen_build(server.base_url, tmp_path)
        output, _ = second.communicate(timeout=60)
        assert second.returncode == 0, output

        resent = [entry for entry in server.log[seen:] if entry.completed and entry.body_sha in before]
        assert resent == []
        again = [e for e in server.log[seen:] if e.completed]
    rows = (out / "train.jsonl").read_text().splitlines()
    assert len(rows) == N
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["llm"]["replies"] == len(again)
    assert manifest["llm"]["cache_hits"] == len(before)
    assert manifest["llm"]["cache_hits"] + len(again) == NEEDED
    assert "Wrote outputs/legal-obvious" in output
