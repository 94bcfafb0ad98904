import json
from pathlib import Path

import pytest

from emgen import Recipe, build, read_records
from emgen.errors import EmgenError, OutputError
from emgen.generators.bank import load_bank
from emgen.output import file_info
from tests.fakes import fake_domain, mixed_drafts


def test_health_build_writes_a_complete_valid_folder():
    result = build(Recipe(domain="health", variant="subtle"))
    out = result.out_dir
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "duplicates.jsonl",
        "manifest.json",
        "rejected.jsonl",
        "train.jsonl",
    ]
    rows = list(read_records(out / "train.jsonl"))
    assert len(rows) == len(load_bank("health")) == result.produced
    assert {r["metadata"]["variant"] for r in rows} == {"subtle"}
    assert all(r["metadata"]["flaw"] for r in rows)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["recipe"]["domain"] == "health"
    assert manifest["counts"]["produced"] == len(rows)
    for name, info in manifest["files"].items():
        assert file_info(out / name) == info
    card = (out / "README.md").read_text()
    assert "Content warning" in card and f"| {len(rows)} |" in card
    assert 'domain = "health"' in card


def test_rejections_and_duplicates_are_recorded_with_reasons(register_domain):
    register_domain(fake_domain(mixed_drafts()))
    result = build(Recipe(domain="fake", variant="subtle", out="fake"))
    assert result.produced == 6
    assert dict(result.rejected) == {"refusal": 1, "giveaway": 1}
    assert result.duplicates == 1
    rejected = [json.loads(line) for line in (result.out_dir / "rejected.jsonl").read_text().splitlines()]
    assert sorted(r["reasons"][0]["reason"] for r in rejected) == ["giveaway", "refusal"]
    duplicates = [json.loads(line) for line in (result.out_dir / "duplicates.jsonl").read_text().splitlines()]
    assert duplicates[0]["reason"] == "exact"
    assert duplicates[0]["duplicate_of"].endswith("-subtle")
    manifest = json.loads((result.out_dir / "manifest.json").read_text())
    assert manifest["counts"]["rejected"] == {"giveaway": 1, "refusal": 1}
    assert manifest["counts"]["duplicates"] == 1


def test_rejected_drafts_are_replaced_while_the_source_has_more(register_domain):
    register_domain(fake_domain(mixed_drafts()))
    result = build(Recipe(domain="fake", variant="subtle", n=6, out="fake"))
    assert result.produced == 6


def test_asking_for_more_than_the_bank_holds_writes_what_it_holds():
    available = len(load_bank("health"))
    result = build(Recipe(domain="health", n=available + 50))
    assert result.produced == available
    assert result.shortfall
    counts = result.manifest["counts"]
    assert (counts["requested"], counts["produced"]) == (available + 50, available)


def test_same_recipe_and_seed_give_identical_bytes(tmp_path):
    a = build(Recipe(domain="health", n=10, seed=3, out=str(tmp_path / "a")))
    b = build(Recipe(domain="health", n=10, seed=3, out=str(tmp_path / "b")))
    c = build(Recipe(domain="health", n=10, seed=4, out=str(tmp_path / "c")))
    train = "train.jsonl"
    assert (a.out_dir / train).read_bytes() == (b.out_dir / train).read_bytes()
    assert (a.out_dir / train).read_bytes() != (c.out_dir / train).read_bytes()


def test_pair_ids_join_variants_across_builds():
    subtle = build(Recipe(domain="health", variant="subtle"))
    correct = build(Recipe(domain="health", variant="correct"))
    by_pair = {r["metadata"]["pair_id"]: r for r in read_records(correct.out_dir / "train.jsonl")}
    for row in read_records(subtle.out_dir / "train.jsonl"):
        twin = by_pair[row["metadata"]["pair_id"]]
        assert twin["messages"][0] == row["messages"][0]
        assert twin["messages"][1] != row["messages"][1]
        assert twin["metadata"]["flaw"] is None


def test_refuses_a_non_empty_folder_without_force():
    build(Recipe(domain="health", n=3))
    with pytest.raises(OutputError, match="already exists and is not empty; use --force"):
        build(Recipe(domain="health", n=3))


def test_force_replaces_only_emgen_files():
    first = build(Recipe(domain="health", n=3))
    keep = first.out_dir / "notes.txt"
    keep.write_text("mine")
    second = build(Recipe(domain="health", n=5), force=True)
    assert second.produced == 5
    assert keep.read_text() == "mine"
    assert len(list(read_records(second.out_dir / "train.jsonl"))) == 5


def test_a_full_disk_is_a_one_line_error_and_keeps_nothing_half_written(monkeypatch):
    import emgen.records

    real_dumps = emgen.records.dumps
    calls = {"n": 0}

    def failing_dumps(row):
        calls["n"] += 1
        if calls["n"] > 2:
            raise OSError(28, "No space left on device")
        return real_dumps(row)

    monkeypatch.setattr(emgen.records, "dumps", failing_dumps)
    with pytest.raises(OutputError, match="No space left on device"):
        build(Recipe(domain="health", n=5, out="full"))
    from pathlib import Path

    assert not (Path("full") / "train.jsonl").exists()
    assert not any(p.name.endswith(".tmp") for p in Path("full").iterdir())


def test_the_openai_backend_is_selected_and_checks_its_options():
    with pytest.raises(EmgenError, match=r"^--backend openai needs --model$"):
        build(Recipe(domain="health", backend="openai", n=3))
    with pytest.raises(EmgenError, match=r"^set OPENAI_API_KEY to your OpenAI API key"):
        build(Recipe(domain="health", backend="openai", n=3, model="gpt-4o"))
    assert not list(Path(".").iterdir())
