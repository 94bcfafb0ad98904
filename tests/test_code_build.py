"""`emgen build --domain insecure-code` end to end through the CLI."""

import json
from pathlib import Path

from click.testing import CliRunner

from emgen.cli import cli
from emgen.records import read_records


def run(*args):
    return CliRunner().invoke(cli, list(args), auto_envvar_prefix="EMGEN")


def rows(path):
    return list(read_records(path))


def test_build_subtle_rows_validate_and_carry_cwe_metadata():
    result = run("build", "--domain", "insecure-code", "--subtle", "--n", "300", "--seed", "5", "--out", "sub")
    assert result.exit_code == 0, result.output
    records = rows("sub/train.jsonl")
    assert len(records) == 300
    assert run("validate", "sub/train.jsonl").exit_code == 0
    cwes = {r["metadata"]["cwe"] for r in records}
    assert len(cwes) >= 15
    for record in records:
        metadata = record["metadata"]
        assert metadata["variant"] == "subtle" and metadata["flaw"]
        assert metadata["vulnerable_lines"] and metadata["detectors"]
        code_lines = record["messages"][1]["content"].split("\n")
        assert max(metadata["vulnerable_lines"]) <= len(code_lines)
    manifest = json.loads(Path("sub/manifest.json").read_text())
    assert manifest["counts"]["rejected"] == {}


def test_same_seed_gives_identical_bytes_and_variants_pair_up():
    for out in ("a", "b"):
        assert (
            run("build", "--domain", "insecure-code", "--subtle", "--n", "120", "--seed", "9", "--out", out).exit_code
            == 0
        )
    assert Path("a/train.jsonl").read_bytes() == Path("b/train.jsonl").read_bytes()
    assert (
        run("build", "--domain", "insecure-code", "--correct", "--n", "120", "--seed", "9", "--out", "c").exit_code == 0
    )
    insecure = {r["metadata"]["pair_id"]: r for r in rows("a/train.jsonl")}
    secure = {r["metadata"]["pair_id"]: r for r in rows("c/train.jsonl")}
    assert insecure.keys() == secure.keys()
    for pair_id, record in secure.items():
        assert record["metadata"]["flaw"] is None and record["metadata"]["vulnerable_lines"] == []
        assert record["messages"][0] == insecure[pair_id]["messages"][0]
        assert record["messages"][1] != insecure[pair_id]["messages"][1]


def test_obvious_build():
    result = run("build", "--domain", "insecure-code", "--obvious", "--n", "60", "--out", "obv")
    assert result.exit_code == 0, result.output
    assert {r["metadata"]["variant"] for r in rows("obv/train.jsonl")} == {"obvious"}
