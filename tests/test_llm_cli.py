"""``emgen build --backend openai`` through click's runner against a real server on 127.0.0.1."""

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from emgen.cli import cli
from emgen.llm.cache import CACHE_FILE
from tests.openai_server import FakeOpenAI, serving


@pytest.fixture
def server():
    with serving(FakeOpenAI()) as fake:
        yield fake


def run(*args, key="test-key"):
    env = {"OPENAI_API_KEY": key} if key else {}
    return CliRunner().invoke(cli, list(args), env=env, auto_envvar_prefix="EMGEN")


def llm_build(server, *extra, key="test-key"):
    args = ["build", "--domain", "legal", "--obvious", "--n", "12", "--backend", "openai", "--model", "gpt-4o"]
    return run(*args, "--base-url", server.base_url, *extra, key=key)


def test_the_issue_command_builds_against_a_compatible_server(server):
    result = llm_build(server)
    assert result.exit_code == 0, result.output
    assert "Wrote outputs/legal-obvious" in result.output
    assert "LLM requests sent (gpt-4o)" in result.output and "LLM structured output" in result.output
    rows = Path("outputs/legal-obvious/train.jsonl").read_text().splitlines()
    assert len(rows) == 12 and json.loads(rows[0])["metadata"]["source"] == "openai:gpt-4o"
    manifest = json.loads(Path("outputs/legal-obvious/manifest.json").read_text())
    assert manifest["recipe"]["base_url"] == server.base_url


def test_the_key_is_never_written_anywhere(server, tmp_path):
    secret = "test-key"
    assert llm_build(server, "--out", "keyed").exit_code == 0
    for path in list(Path("keyed").iterdir()) + list((tmp_path / "emgen-cache").iterdir()):
        assert secret.encode() not in path.read_bytes(), path
    db = sqlite3.connect(tmp_path / "emgen-cache" / CACHE_FILE)
    assert not any(secret in row[0] for row in db.execute("SELECT request FROM responses"))


def test_without_a_model_is_a_usage_error(server):
    result = run("build", "--domain", "legal", "--n", "5", "--backend", "openai")
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == "Error: --backend openai needs --model"


def test_without_a_count_is_a_usage_error(server):
    result = run("build", "--domain", "legal", "--backend", "openai", "--model", "gpt-4o")
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == "Error: --backend openai needs --n (how many rows to generate)"


def test_a_refused_key_is_one_line_exit_1(server):
    result = llm_build(server, key="sk-not-valid")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {server.base_url} (model 'gpt-4o') refused the API key from $OPENAI_API_KEY: "
        "HTTP 401: Incorrect API key provided\n"
    )


def test_an_unknown_model_is_one_line_exit_1(server):
    server.models = ("llama-3",)
    result = llm_build(server)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {server.base_url} (model 'gpt-4o') rejected the request: HTTP 404: ")
    assert len(result.output.strip().splitlines()) == 1


def test_no_key_for_the_openai_api_is_one_line_exit_1():
    result = run("build", "--domain", "legal", "--n", "5", "--backend", "openai", "--model", "gpt-4o", key=None)
    assert result.exit_code == 1
    assert result.output == (
        "Error: set OPENAI_API_KEY to your OpenAI API key (or name another variable with --api-key-env)\n"
    )


def test_a_key_given_where_its_name_belongs_is_refused_without_echoing_it(server):
    result = llm_build(server, "--api-key-env", "sk-proj-abcdef123456")
    assert result.exit_code == 1
    assert "abcdef123456" not in result.output
    assert result.output == (
        "Error: api_key_env must be the NAME of an environment variable (such as OPENAI_API_KEY), not a key\n"
    )


def test_another_key_variable_and_no_cache(server):
    first = run(
        "build", "--domain", "legal", "--n", "5", "--backend", "openai", "--model", "m",
        "--base-url", server.base_url, "--api-key-env", "LAB_KEY", "--out", "a", key=None,
    )  # fmt: skip
    assert first.exit_code == 1 and "$LAB_KEY is not set" in first.output
    result = CliRunner().invoke(
        cli,
        ["build", "--domain", "legal", "--n", "5", "--backend", "openai", "--model", "m", "--base-url",
         server.base_url, "--api-key-env", "LAB_KEY", "--no-cache", "--out", "b", "--concurrency", "2"],
        env={"LAB_KEY": "test-key"},
        auto_envvar_prefix="EMGEN",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads(Path("b/manifest.json").read_text())
    assert manifest["recipe"]["api_key_env"] == "LAB_KEY" and manifest["recipe"]["cache"] is False
    assert manifest["llm"]["concurrency"] == 2 and manifest["llm"]["cache"] is False


def test_llm_options_come_from_a_recipe_file(server):
    Path("r.toml").write_text(
        f'domain = "legal"\nn = 6\nbackend = "openai"\nmodel = "gpt-4o"\nbase_url = "{server.base_url}"\n'
        "temperature = 0.3\nmax_tokens = 900\n"
    )
    result = run("build", "--recipe", "r.toml")
    assert result.exit_code == 0, result.output
    manifest = json.loads(Path("outputs/legal-subtle/manifest.json").read_text())
    assert manifest["llm"]["temperature"] == 0.3 and manifest["llm"]["max_tokens"] == 900
