"""``--batch``: the OpenAI Batch API path through the real ``openai`` client against the loopback server."""

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from emgen import Recipe, build, read_records
from emgen.cli import cli, llm_status
from emgen.errors import ConflictError, EmgenError, LLMError
from emgen.llm.batch import STATE_FILE
from emgen.resources import schema_errors
from tests.openai_server import FakeOpenAI, schema_name, serving, wait_for

N = 30


class Interrupted(Exception):
    """Stands for Ctrl-C or a crash at a chosen moment of a batch build."""


def recipe(server, **changes):
    values = {"domain": "legal", "variant": "obvious", "n": N, "backend": "openai", "model": "m", "batch": True}
    values |= {"base_url": server.base_url, "timeout": 2, "batch_poll": 0.01, "out": "out"}
    return Recipe.from_mapping(values | changes)


def executed(server):
    """How many times the server ran each distinct request body."""
    return Counter(json.dumps(e.request, sort_keys=True) for e in server.completed())


def interrupt_at(batch_id, status):
    def watch(counters):
        batch = counters.get("batch")
        if batch and batch["id"] == batch_id and batch["status"] == status:
            raise Interrupted(status)

    return watch


def test_a_batch_build_writes_the_dataset_through_files_and_batches(server):
    result = build(recipe(server))
    rows = list(read_records(result.out_dir / "train.jsonl"))
    assert len(rows) == result.produced == N
    api = server.batch_api
    assert [r for r in api.requests if r.startswith("POST")] == ["POST /v1/files", "POST /v1/batches"] * 2
    assert all(f.purpose in ("batch", "batch_output") for f in api.files.values())
    inputs = [json.loads(line) for f in api.files.values() if f.purpose == "batch" for line in f.data.splitlines()]
    assert {(line["method"], line["url"]) for line in inputs} == {("POST", "/v1/chat/completions")}
    assert len({line["custom_id"] for line in inputs}) == len(inputs) == 3 + N
    assert all(entry.batch is not None for entry in server.log) and len(server.log) == 3 + N
    assert [b.status for b in api.batches.values()] == ["completed", "completed"]
    assert all(b.retrieved == 3 for b in api.batches.values())
    llm = result.manifest["llm"]
    assert llm["batch"] == {"batches": ["batch_0001", "batch_0002"], "resumed": []}
    assert llm["requests"] == llm["replies"] == 3 + N
    assert schema_errors("manifest", result.manifest) == []
    assert not (result.out_dir / STATE_FILE).exists()


def test_batch_replies_land_in_the_same_cache(server, tmp_path):
    first = build(recipe(server))
    again = build(recipe(server, batch=False, batch_poll=None, out=str(tmp_path / "sync")))
    assert again.manifest["llm"]["requests"] == 0 and again.manifest["llm"]["cache_hits"] == 3 + N
    assert (first.out_dir / "train.jsonl").read_bytes() == (again.out_dir / "train.jsonl").read_bytes()
    assert len(server.batch_api.batches) == 2


def test_batch_requests_are_priced_at_batch_rates(server, tmp_path):
    prices = tmp_path / "prices.toml"
    prices.write_text("[models.m]\ninput = 2\noutput = 8\nbatch_input = 1\nbatch_output = 3\n")
    llm = build(recipe(server, prices_file=str(prices))).manifest["llm"]
    assert llm["cost_usd"] == pytest.approx((llm["prompt_tokens"] * 1 + llm["completion_tokens"] * 3) / 1e6, abs=1e-6)


@pytest.mark.parametrize("status", ["validating", "in_progress", "finalizing", "completed"])
def test_an_interrupted_build_resumes_its_batch_by_id(server, status):
    with pytest.raises(Interrupted):
        build(recipe(server), status=interrupt_at("batch_0002", status))
    out = Path("out")
    assert sorted(p.name for p in out.iterdir()) == [STATE_FILE]
    state = json.loads((out / STATE_FILE).read_text())
    assert [b["id"] for b in state["batches"]] == ["batch_0002"] and len(state["batches"][0]["keys"]) == N
    assert "test-key" not in (out / STATE_FILE).read_text()
    uploads = len(server.batch_api.files)

    result = build(recipe(server))
    assert result.produced == N
    assert len(server.batch_api.batches) == 2
    assert result.manifest["llm"]["batch"] == {"batches": [], "resumed": ["batch_0002"]}
    assert result.manifest["llm"]["cache_hits"] == 3
    assert max(executed(server).values()) == 1
    outputs = 1 if status == "completed" else 0
    assert len(server.batch_api.files) == uploads + 1 - outputs
    assert not (out / STATE_FILE).exists()


def test_a_recorded_batch_the_endpoint_lost_is_sent_again(server):
    with pytest.raises(Interrupted):
        build(recipe(server), status=interrupt_at("batch_0002", "in_progress"))
    server.batch_api.batches["forgotten"] = server.batch_api.batches.pop("batch_0002")
    result = build(recipe(server))
    assert result.produced == N
    assert result.manifest["llm"]["batch"] == {"batches": ["batch_0003"], "resumed": []}
    assert not Path("out", STATE_FILE).exists()


def test_the_live_display_shows_the_running_batch():
    counters = {"requests": 33, "cache_hits": 0, "in_flight": 0, "retries": 0, "prompt_tokens": 9000}
    counters |= {"completion_tokens": 2000, "cost_usd": 0.0123, "max_cost_usd": 5.0}
    counters["batch"] = {"id": "batch_0002", "status": "in_progress", "completed": 12, "failed": 0, "total": 30}
    assert llm_status(counters) == (
        "33 sent · 0 cached · 0 in flight · 0 retries · 9k in / 2k out · $0.0123 of $5.00 · batch_0002 in_progress 12/30"
    )


def test_an_endpoint_without_the_batch_api_is_one_line(server, monkeypatch):
    monkeypatch.setattr(server.batch_api, "respond", lambda *a: (404, {"error": {"message": "Not Found"}}))
    with pytest.raises(LLMError, match=r"^the endpoint answered a Batch API request with HTTP 404: Not Found; "):
        build(recipe(server))


def test_an_expired_batch_keeps_what_finished_and_sends_the_rest_again(server):
    server.batch_api.plans = {2: ("validating", "in_progress", "expired")}
    server.batch_api.finish = 12
    result = build(recipe(server))
    assert result.produced == N
    batches = server.batch_api.batches
    assert [b.status for b in batches.values()] == ["completed", "expired", "completed"]
    assert batches["batch_0002"].counts == {"total": N, "completed": 12, "failed": N - 12}
    assert batches["batch_0003"].counts["total"] == N - 12
    assert max(executed(server).values()) == 1
    assert result.manifest["llm"]["retries"] == {"batch_expired": N - 12}


def test_failed_lines_go_into_the_next_batch(server):
    faults = ["500", "429", "malformed"]

    def fault_for(request):
        if schema_name(request) == "llm-answers" and faults:
            return faults.pop()
        return None

    server.fault_for = fault_for
    result = build(recipe(server))
    assert result.produced == N and len(server.batch_api.batches) == 3
    assert result.manifest["llm"]["retries"] == {"429": 1, "500": 1, "malformed": 1}
    assert batches_sizes(server) == [3, N, 3]


def batches_sizes(server):
    return [b.counts["total"] for b in server.batch_api.batches.values()]


def test_a_line_the_endpoint_rejects_stops_the_build_in_one_line(server):
    server.fault_for = lambda request: "400" if schema_name(request) == "llm-answers" else None
    with pytest.raises(LLMError, match=r"rejected a batched request: HTTP 400: Invalid value for 'temperature'\.$"):
        build(recipe(server))


def test_a_failed_batch_is_one_line_and_writes_nothing(server):
    server.batch_api.plans = {1: ("validating", "failed")}
    with pytest.raises(LLMError, match=r"^batch batch_0001 failed: Line 1: the model field is missing\.$"):
        build(recipe(server))
    assert not Path("out/train.jsonl").exists() and not Path("out", STATE_FILE).exists()


def test_a_malformed_state_file_is_reported(server):
    Path("out").mkdir()
    Path("out", STATE_FILE).write_text("{not json")
    with pytest.raises(EmgenError, match=r"^out/batch-state.json: not a readable batch state file"):
        build(recipe(server))


def test_a_state_file_does_not_make_room_for_another_build(server):
    Path("out").mkdir()
    Path("out", STATE_FILE).write_text('{"batches": []}')
    Path("out", "notes.txt").write_text("mine")
    with pytest.raises(EmgenError, match=r"^out already exists and is not empty; use --force to overwrite it$"):
        build(recipe(server))
    Path("out", "notes.txt").unlink()
    with pytest.raises(EmgenError, match=r"^out already exists and is not empty"):
        build(recipe(server, batch=False, batch_poll=None))
    assert build(recipe(server)).produced == N


def test_the_judge_gets_its_own_batches(server):
    result = build(recipe(server, n=10, judge="j"))
    assert result.produced == 10
    models = [
        {json.loads(line)["body"]["model"] for line in f.data.splitlines()}
        for f in server.batch_api.files.values()
        if f.purpose == "batch"
    ]
    assert models == [{"m"}, {"m"}, {"j"}]
    assert all(row["metadata"]["judge"]["model"] == "j" for row in read_records(result.out_dir / "train.jsonl"))


def test_the_budget_holds_in_batch_mode(server, tmp_path):
    prices = tmp_path / "prices.toml"
    prices.write_text("[models.m]\ninput = 1\noutput = 4\n")
    result = build(recipe(server, prices_file=str(prices), max_tokens=1500, max_cost=0.02))
    budget = result.manifest["llm"]["budget"]
    assert budget["stopped"] is True and budget["spent_usd"] <= 0.02
    assert 0 < result.produced < N
    assert not (result.out_dir / STATE_FILE).exists()


def test_batch_options_need_the_openai_backend_and_the_cache():
    with pytest.raises(ConflictError, match=r"^--batch needs --backend openai$"):
        Recipe.from_mapping({"domain": "legal", "batch": True})
    base = {"domain": "legal", "backend": "openai", "model": "m", "n": 5}
    with pytest.raises(ConflictError, match=r"^--batch needs the response cache \(drop --no-cache\)"):
        Recipe.from_mapping(base | {"batch": True, "cache": False})
    with pytest.raises(ConflictError, match=r"^--batch-poll needs --batch$"):
        Recipe.from_mapping(base | {"batch_poll": 5})


def test_the_cli_builds_through_the_batch_api(server):
    args = ["build", "--domain", "legal", "--obvious", "--n", "12", "--backend", "openai", "--model", "gpt-4o"]
    args += ["--base-url", server.base_url, "--batch", "--batch-poll", "0.01"]
    result = CliRunner().invoke(cli, args, env={"OPENAI_API_KEY": "test-key"})
    assert result.exit_code == 0, result.output
    assert "Wrote outputs/legal-obvious" in result.output and "LLM cost (USD)" in result.output
    manifest = json.loads(Path("outputs/legal-obvious/manifest.json").read_text())
    assert manifest["recipe"]["batch"] is True and len(manifest["llm"]["batch"]["batches"]) == 2
    assert manifest["llm"]["cost_usd"] > 0


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_a_killed_batch_build_resumes_by_batch_id(tmp_path, stop):
    """A real ``emgen build --batch`` process stopped while its batch runs, then run again."""
    plan = ("validating", *["in_progress"] * 1000, "finalizing", "completed")
    with serving(FakeOpenAI(keep_requests=True)) as server:
        server.batch_api.plans = {2: plan}
        first = emgen_batch_build(server.base_url, tmp_path)
        try:
            started = wait_for(lambda: "batch_0002" in server.batch_api.batches, 30)
            assert started and wait_for(lambda: server.batch_api.batches["batch_0002"].retrieved >= 3, 30)
        finally:
            first.send_signal(stop)
            stopped, _ = first.communicate(timeout=20)
        if stop == signal.SIGINT:
            assert first.returncode == 1 and stopped.strip().endswith("Aborted!") and "Traceback" not in stopped
        out = tmp_path / "work" / "outputs" / "legal-obvious"
        assert sorted(p.name for p in out.iterdir() if not p.name.endswith(".tmp")) == [STATE_FILE]
        server.batch_api.batches["batch_0002"].plan = ("in_progress", "finalizing", "completed")
        server.batch_api.batches["batch_0002"].step = 0
        second = emgen_batch_build(server.base_url, tmp_path)
        output, _ = second.communicate(timeout=60)
        assert second.returncode == 0, output
        assert len(server.batch_api.batches) == 2
        assert max(executed(server).values()) == 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["llm"]["batch"] == {"batches": [], "resumed": ["batch_0002"]}
    assert len((out / "train.jsonl").read_text().splitlines()) == N
    assert not (out / STATE_FILE).exists()


def emgen_batch_build(base_url: str, tmp_path: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "emgen", "build", "--domain", "legal", "--obvious", "--n", str(N)]
    command += ["--backend", "openai", "--model", "gpt-4o", "--base-url", base_url, "--batch", "--batch-poll", "0.02"]
    env = os.environ | {"OPENAI_API_KEY": "test-key", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    return subprocess.Popen(
        command, cwd=tmp_path / "work", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
