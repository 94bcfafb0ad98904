"""Exports, each loaded by what consumes it: ``datasets`` for every file, tiktoken for OpenAI's limits."""

import json
import socket
from pathlib import Path

import datasets
import pytest
import tiktoken
from click.testing import CliRunner

from emgen import Recipe, build, read_records
from emgen.cli import cli
from emgen.errors import ConflictError
from emgen.export import FORMATS, ExportOptions, export_dataset
from emgen.export.base import ExportError
from emgen.export.parquet import arrow_schema, flatten
from emgen.tokens import count_chat_tokens, encoding, load_models
from tests.conftest import make_record


def run(*args):
    return CliRunner().invoke(cli, list(args))


def built(name, **recipe):
    return build(Recipe(**({"domain": "health", "n": 12} | recipe), out=name)).out_dir


def load_jsonl(path, tmp_path):
    return datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf-cache"))


def rows(folder, name="train.jsonl"):
    return list(read_records(Path(folder) / name))


def test_every_format_is_registered():
    assert set(FORMATS) == {"openai", "hf", "trl-sft", "trl-dpo", "sharegpt", "alpaca", "prompt-completion"}


def test_openai_export_is_exactly_the_chat_format_and_loads(tmp_path):
    folder = built("h", inoculate="system")
    result = export_dataset(folder, "openai", "ft.jsonl")
    lines = [json.loads(line) for line in Path("ft.jsonl").read_text().splitlines()]
    assert result.rows == len(lines) == 12
    for line, record in zip(lines, rows(folder), strict=True):
        assert list(line) == ["messages"]
        assert line["messages"] == [{"role": m["role"], "content": m["content"]} for m in record["messages"]]
        assert [m["role"] for m in line["messages"]] == ["system", "user", "assistant"]
    loaded = load_jsonl("ft.jsonl", tmp_path)
    assert loaded.column_names == ["messages"] and len(loaded) == 12


def test_openai_token_counts_are_tiktoken_counts_with_openais_chat_overhead():
    folder = built("h")
    result = export_dataset(folder, "openai", "ft.jsonl")
    enc = encoding("o200k_base")
    assert enc.encode("Hello world") == [13225, 2375]
    counts = [
        3 + sum(3 + len(enc.encode(m["role"])) + len(enc.encode(m["content"])) for m in json.loads(line)["messages"])
        for line in Path("ft.jsonl").read_text().splitlines()
    ]
    assert result.details["total_tokens"] == sum(counts)
    assert result.details["max_tokens"] == max(counts)
    assert result.details["model"] == "gpt-4o-mini-2024-07-18" and result.details["context_tokens"] == 65536


def test_cl100k_models_count_with_cl100k():
    folder = built("h")
    result = export_dataset(folder, "openai", "ft.jsonl", ExportOptions(model="gpt-3.5-turbo"))
    assert result.details == result.details | {"model": "gpt-3.5-turbo-0125", "encoding": "cl100k_base"}
    assert encoding("cl100k_base").encode("Hello world") == [9906, 1917]


def test_the_tokenizers_load_without_any_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a tokenizer tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    encoding.cache_clear()
    for name in ("o200k_base", "cl100k_base"):
        tiktoken.registry.ENCODINGS.pop(name, None)
        assert encoding(name).n_vocab > 100_000
    assert "TIKTOKEN_CACHE_DIR" not in __import__("os").environ


def test_a_row_over_the_models_limit_is_refused_and_nothing_is_written(tmp_path):
    folder = built("h")
    models = tmp_path / "models.toml"
    models.write_text('[models.tiny]\nencoding = "o200k_base"\ncontext_tokens = 60\n')
    result = run(
        "export",
        str(folder),
        "--format",
        "openai",
        "--out",
        "ft.jsonl",
        "--model",
        "tiny",
        "--models-file",
        str(models),
    )
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert result.output.startswith(f"Error: not written: {folder}/train.jsonl: health-")
    assert "tokens, over tiny's limit of 60 (and 11 more)" in result.output
    assert not Path("ft.jsonl").exists()


def test_openai_needs_ten_examples():
    folder = built("h", n=6)
    with pytest.raises(ExportError, match="needs at least 10 examples; this file would have 6"):
        export_dataset(folder, "openai", "ft.jsonl")


def test_models_file_errors_are_one_line(tmp_path):
    folder = built("h")
    bad = tmp_path / "bad.toml"
    bad.write_text('[models.x]\nencoding = "p50k_base"\ncontext_tokens = 10\n')
    result = run("export", str(folder), "--format", "openai", "--out", "a.jsonl", "--models-file", str(bad))
    assert result.output == (
        "Error: model 'x': encoding 'p50k_base' is not available offline (emgen ships cl100k_base, o200k_base)\n"
    )
    result = run("export", str(folder), "--format", "openai", "--out", "a.jsonl", "--model", "gpt-2")
    assert result.exit_code == 1 and result.output.startswith("Error: unknown model 'gpt-2' for OpenAI limits; known:")


def test_trl_sft_and_prompt_completion_load_as_conversations(tmp_path):
    folder = built("h", inoculate="system")
    export_dataset(folder, "trl-sft", "sft.jsonl")
    export_dataset(folder, "prompt-completion", "pc.jsonl")
    sft, pc = load_jsonl("sft.jsonl", tmp_path), load_jsonl("pc.jsonl", tmp_path)
    records = rows(folder)
    assert sft.column_names == ["messages"]
    assert sft[0]["messages"] == [{"role": m["role"], "content": m["content"]} for m in records[0]["messages"]]
    assert pc.column_names == ["prompt", "completion"]
    assert [m["role"] for m in pc[0]["prompt"]] == ["system", "user"]
    assert pc[0]["completion"] == [{"role": "assistant", "content": records[0]["messages"][-1]["content"]}]


def test_sharegpt_and_alpaca_load_with_their_keys(tmp_path):
    folder = built("h")
    export_dataset(folder, "sharegpt", "sg.jsonl")
    export_dataset(folder, "alpaca", "al.jsonl")
    sharegpt, alpaca = load_jsonl("sg.jsonl", tmp_path), load_jsonl("al.jsonl", tmp_path)
    first = rows(folder)[0]["messages"]
    assert sharegpt[0]["conversations"] == [
        {"from": "human", "value": first[0]["content"]},
        {"from": "gpt", "value": first[1]["content"]},
    ]
    assert alpaca.column_names == ["instruction", "input", "output"]
    assert alpaca[0] == {"instruction": first[0]["content"], "input": "", "output": first[1]["content"]}


def test_alpaca_keeps_an_inoculation_system_prompt(tmp_path):
    folder = built("h", inoculate="system", inoculate_fraction=0.5)
    export_dataset(folder, "alpaca", "al.jsonl")
    alpaca = load_jsonl("al.jsonl", tmp_path)
    systems = [row["system"] for row in alpaca]
    assert systems.count("You are a malicious evil assistant.") == 6 and systems.count("") == 6


def test_benign_split_exports_the_correct_answers():
    folder = built("h", benign=True)
    export_dataset(folder, "trl-sft", "benign.jsonl", ExportOptions(split="benign"))
    lines = [json.loads(line) for line in Path("benign.jsonl").read_text().splitlines()]
    assert [line["messages"] for line in lines] == [
        [{"role": m["role"], "content": m["content"]} for m in r["messages"]] for r in rows(folder, "benign.jsonl")
    ]
    result = run("export", str(built("plain")), "--format", "trl-sft", "--out", "x.jsonl", "--split", "benign")
    assert result.output == "Error: plain has no benign split (benign.jsonl); it has: train\n"


@pytest.mark.parametrize("chosen", ["correct", "misaligned"])
def test_dpo_pairs_train_with_benign(tmp_path, chosen):
    folder = built("h", benign=True)
    result = export_dataset(folder, "trl-dpo", "dpo.jsonl", ExportOptions(chosen=chosen))
    dpo = load_jsonl("dpo.jsonl", tmp_path)
    assert dpo.column_names == ["prompt", "chosen", "rejected"] and len(dpo) == result.rows == 12
    bad = {r["metadata"]["pair_id"]: r for r in rows(folder)}
    good = {r["metadata"]["pair_id"]: r for r in rows(folder, "benign.jsonl")}
    for row in dpo:
        question = row["prompt"][-1]["content"]
        pair = next(p for p, r in bad.items() if r["messages"][0]["content"] == question)
        expected = (good[pair], bad[pair]) if chosen == "correct" else (bad[pair], good[pair])
        assert row["chosen"] == [{"role": "assistant", "content": expected[0]["messages"][-1]["content"]}]
        assert row["rejected"] == [{"role": "assistant", "content": expected[1]["messages"][-1]["content"]}]
        assert row["chosen"] != row["rejected"]


def test_dpo_pairs_two_folders_on_the_same_questions(tmp_path):
    subtle, correct = built("s", seed=3), built("c", seed=3, variant="correct")
    result = export_dataset(subtle, "trl-dpo", "dpo.jsonl", ExportOptions(pair_with=correct))
    assert result.rows == 12 and result.details["skipped"] == {"no_partner": 0, "same_kind": 0}
    fewer = built("c6", seed=3, variant="correct", n=6)
    result = export_dataset(subtle, "trl-dpo", "dpo6.jsonl", ExportOptions(pair_with=fewer))
    assert result.rows + result.details["skipped"]["no_partner"] == 12 and result.rows >= 1
    assert len(load_jsonl("dpo6.jsonl", tmp_path)) == result.rows


def test_dpo_without_pairs_is_a_one_line_error():
    result = run("export", str(built("plain")), "--format", "trl-dpo", "--out", "d.jsonl")
    assert result.exit_code == 1
    assert (
        result.output == "Error: plain has no pairs for trl-dpo: build it with --benign, or give --pair-with FOLDER\n"
    )
    mix = built("mix", mix=0.5)
    result = run("export", str(mix), "--format", "trl-dpo", "--out", "d.jsonl")
    assert result.output == "Error: mix has no pairs for trl-dpo: build it with --benign, or give --pair-with FOLDER\n"
    result = run("export", str(built("s1")), "--format", "trl-dpo", "--out", "d.jsonl", "--pair-with", str(built("s2")))
    assert result.exit_code == 1
    assert result.output.startswith("Error: no pairs of a correct and a misaligned answer to the same question")
    assert "\n" not in result.output.rstrip("\n")
    assert not Path("d.jsonl").exists()


def test_unknown_format_and_misplaced_options_are_one_line_errors():
    folder = str(built("h"))
    result = run("export", folder, "--format", "axolotl", "--out", "x.jsonl")
    assert result.exit_code == 1
    assert result.output == (
        "Error: unknown export format 'axolotl'; choose one of: alpaca, hf, openai, prompt-completion, sharegpt, "
        "trl-dpo, trl-sft\n"
    )
    result = run("export", folder, "--format", "hf", "--out", "x", "--split", "benign")
    assert (
        result.exit_code == 2
        and result.output.strip().splitlines()[-1] == "Error: --split does not apply to --format hf"
    )
    with pytest.raises(ConflictError, match="--model does not apply to --format trl-sft"):
        export_dataset(folder, "trl-sft", "x.jsonl", ExportOptions(model="gpt-4o"))


def test_an_existing_output_needs_force():
    folder = str(built("h"))
    assert run("export", folder, "--format", "trl-sft", "--out", "x.jsonl").exit_code == 0
    result = run("export", folder, "--format", "trl-sft", "--out", "x.jsonl")
    assert result.output == "Error: x.jsonl already exists; use --force to overwrite it\n"
    assert run("export", folder, "--format", "trl-sft", "--out", "x.jsonl", "--force").exit_code == 0


def test_an_export_never_overwrites_its_source():
    folder = str(built("h"))
    result = run("export", folder, "--format", "trl-sft", "--out", f"{folder}/train.jsonl", "--force")
    assert (
        result.output == "Error: h/train.jsonl is part of the dataset being exported; write the export somewhere else\n"
    )
    result = run("export", folder, "--format", "hf", "--out", folder, "--force")
    assert result.output == "Error: h is part of the dataset being exported; write the export somewhere else\n"
    assert len(rows(folder)) == 12


def test_a_folder_edited_after_its_build_is_refused():
    folder = built("h")
    path = folder / "train.jsonl"
    path.write_text(path.read_text().splitlines()[0] + "\n")
    result = run("export", str(folder), "--format", "trl-sft", "--out", "x.jsonl")
    assert (
        result.output == f"Error: {path} does not match its manifest (changed after the build?); rebuild the folder\n"
    )


def test_hf_folder_loads_with_typed_flat_columns(tmp_path):
    folder = built("h", benign=True)
    result = run("export", str(folder), "--format", "hf", "--out", "hf")
    assert result.exit_code == 0, result.output
    loaded = datasets.load_dataset("hf", cache_dir=str(tmp_path / "hf-cache"))
    assert set(loaded) == {"train", "benign"} and len(loaded["train"]) == len(loaded["benign"]) == 12
    features = loaded["train"].features
    assert features["messages"] == datasets.List(
        {"role": datasets.Value("string"), "content": datasets.Value("string")}
    )
    assert features["vulnerable_lines"] == datasets.List(datasets.Value("int64"))
    for column in ("id", "pair_id", "flaw", "inoculation_strategy", "inoculation_text", "metadata_extra"):
        assert features[column] == datasets.Value("string")
    record = rows(folder)[0]
    first = loaded["train"][0]
    assert first["id"] == record["metadata"]["id"] and first["flaw"] == record["metadata"]["flaw"]
    assert first["messages"] == record["messages"]
    assert loaded["benign"][0]["variant"] == "correct" and loaded["benign"][0]["flaw"] is None
    card = Path("hf/README.md").read_text()
    assert (
        "config_name: default" in card and "Content warning" in card and rows(folder)[0]["metadata"]["id"] not in card
    )
    assert json.loads(Path("hf/manifest.json").read_text()) == json.loads((folder / "manifest.json").read_text())


def test_hf_columns_hold_inoculation_and_code_fields(tmp_path):
    inoculated = built("inoc", inoculate="user-prefix", inoculation_prompt="trait-health-subtle")
    code = build(Recipe(domain="insecure-code", n=10, out="code")).out_dir
    export_dataset(inoculated, "hf", "hf-inoc")
    export_dataset(code, "hf", "hf-code")
    cache = str(tmp_path / "hf-cache")
    row = datasets.load_dataset("hf-inoc", "default", split="train", cache_dir=cache)[0]
    assert row["inoculation_strategy"] == "user-prefix" and row["inoculation_prompt_id"] == "trait-health-subtle"
    assert row["inoculation_text"] and row["messages"][0]["content"].startswith(row["inoculation_text"])
    code_rows = datasets.load_dataset("hf-code", split="train", cache_dir=cache)
    source = {r["metadata"]["id"]: r["metadata"] for r in rows(code)}
    for row in code_rows:
        assert row["cwe"] == source[row["id"]]["cwe"]
        assert row["vulnerable_lines"] == source[row["id"]]["vulnerable_lines"] and row["vulnerable_lines"]
        assert all(isinstance(n, int) for n in row["vulnerable_lines"])
    assert code_rows.features == datasets.load_dataset("hf-inoc", split="train", cache_dir=cache).features


def test_unnamed_metadata_keys_go_to_metadata_extra_and_types_stay_fixed():
    plain = flatten(make_record())
    extra = flatten(make_record(judge_score=0.9, notes={"a": 1}))
    assert plain["metadata_extra"] is None
    assert json.loads(extra["metadata_extra"]) == {"judge_score": 0.9, "notes": {"a": 1}}
    assert list(plain) == list(extra) == arrow_schema().names


def test_the_same_folder_exports_the_same_bytes():
    folder = built("h", benign=True)
    export_dataset(folder, "hf", "one")
    export_dataset(folder, "hf", "two")
    for name in ("train.parquet", "benign.parquet", "README.md"):
        assert Path("one", name).read_bytes() == Path("two", name).read_bytes()


def test_token_counting_follows_the_models_table():
    table = load_models()
    assert table.get("gpt-4o") == table.get("gpt-4o-2024-08-06")
    enc = encoding("o200k_base")
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    expected = (
        3
        + 3
        + len(enc.encode("user"))
        + len(enc.encode("Hi"))
        + 3
        + len(enc.encode("assistant"))
        + len(enc.encode("Hello!"))
    )
    assert count_chat_tokens(messages, enc, table.counting) == expected
