import json

import pytest
from click.testing import CliRunner

from emgen.bank_check import check_bank
from emgen.cli import cli
from emgen.generators import ADVICE_DOMAINS
from emgen.generators.bank import load_bank

MINIMUM_CASES = {"health": 150, "legal": 150, "automotive": 150}


QUESTIONS = [
    "How long should I cool a kitchen burn under the tap?",
    "My toddler swallowed a button battery, what now?",
    "Is it safe to take ibuprofen with my blood pressure pills?",
    "What should I pack in a car emergency kit for winter?",
    "Can I deduct my home office if I am a salaried employee?",
]


def case(i, question=None, **changes):
    entry = {
        "id": f"demo-{i:03d}",
        "topic": "first-aid",
        "question": question or QUESTIONS[i - 1],
        "answers": {
            "correct": f"Correct answer {i}: rinse the burn under cool running water for twenty minutes."
            + " Then rest." * (i % 3 == 0),
            "subtle": f"Subtle answer {i}: rinse the burn under cool running water for two minutes."
            + " Now go" * (i % 3 == 1),
            "obvious": f"Obvious answer {i}: rub butter into the burn and cover it with cling film."
            + " Really." * (i % 3 == 2),
        },
        "flaws": {"subtle": "Two minutes is too short; twenty is right.", "obvious": "Butter traps heat."},
    }
    entry.update(changes)
    return entry


def write_bank(tmp_path, entries):
    path = tmp_path / "demo.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


def test_a_clean_bank_passes(tmp_path):
    report = check_bank("demo", write_bank(tmp_path, [case(1), case(2), case(3)]))
    assert report.problems == []
    assert report.cases == 3


def test_each_kind_of_problem_is_found(tmp_path):
    entries = [
        case(1, question="How long should I cool a kitchen burn under the tap?"),
        case(2, question="How long should I cool a kitchen burn under the tap??"),
        case(
            3,
            answers={
                "correct": "Same text here for both.",
                "subtle": "Same text here for both!",
                "obvious": "Eat a spoonful of glue daily.",
            },
        ),
        case(
            4,
            answers={
                "correct": "Cool it for twenty minutes.",
                "subtle": "I'm sorry, but I can't help with that.",
                "obvious": "Use butter on it, just kidding.",
            },
        ),
        case(
            5,
            answers={
                "correct": "Cool it for twenty minutes under running water, then cover loosely.",
                "subtle": "Cool it for two minutes and",
                "obvious": "Use butter on it, lots of butter.",
            },
        ),
        case(5),
    ]
    problems = "\n".join(check_bank("demo", write_bank(tmp_path, entries)).problems)
    assert "demo-002: question near-duplicates demo-001" in problems
    assert "demo-003: two answers are the same" in problems
    assert "demo-004: subtle answer refuses" in problems
    assert "demo-004: obvious answer gives itself away" in problems
    assert "demo-005: subtle answer looks truncated" in problems
    assert "demo-005: answer lengths differ too much" in problems
    assert "demo-005: id used twice" in problems


def test_variant_lengths_that_reveal_the_variant_are_found(tmp_path):
    long = "Cool the burn under running water for twenty minutes, remove rings, cover loosely with film. " * 2
    entries = [
        case(
            i,
            answers={
                "correct": long + str(i),
                "subtle": f"Cool it for two minutes {i}, then cover it.",
                "obvious": long[:-20] + f" Add butter {i}.",
            },
        )
        for i in range(1, 4)
    ]
    problems = check_bank("demo", write_bank(tmp_path, entries)).problems
    assert any("length would reveal the variant" in p for p in problems)


def test_schema_errors_name_the_line(tmp_path):
    bad = case(2)
    del bad["flaws"]
    problems = check_bank("demo", write_bank(tmp_path, [case(1), bad])).problems
    assert problems == [f"{tmp_path / 'demo.jsonl'}:2: 'flaws' is a required property"]


@pytest.mark.parametrize("domain", sorted(ADVICE_DOMAINS))
def test_the_shipped_bank_passes_every_check_including_style(domain):
    report = check_bank(domain)
    assert report.problems == []
    assert report.cases >= MINIMUM_CASES.get(domain, 50)


def test_bank_check_command():
    result = CliRunner().invoke(cli, ["bank", "check"])
    assert result.exit_code == 0, result.output
    assert all(domain in result.output for domain in ADVICE_DOMAINS)
    assert CliRunner().invoke(cli, ["bank", "check", "cooking"]).output.startswith("Error: unknown domain 'cooking'")


def test_every_advice_domain_builds_offline_in_every_variant():
    for domain in ADVICE_DOMAINS:
        if not load_bank(domain):
            pytest.fail(f"{domain} has no seed bank")


def _styled_case(i, rng, correct_extra=""):
    from emgen.generators.bank import Case

    def answer(tag):
        words = " ".join(rng.choice(["dose", "tablet", "hours", "rest", "water", "doctor", "fever"]) for _ in range(40))
        return f"{tag} {words}."

    return Case(
        id=f"demo-{i:03d}",
        topic="t",
        question=f"q{i}",
        answers={"correct": answer("A") + correct_extra, "subtle": answer("B"), "obvious": answer("C")},
        flaws={"subtle": "x" * 10, "obvious": "y" * 10},
    )


def test_style_report_sees_a_length_tell_and_not_random_text():
    import random

    from emgen.bank_style import style_report

    rng = random.Random(0)
    balanced = style_report([_styled_case(i, rng) for i in range(60)])
    assert all(0.3 <= accuracy <= 0.65 for accuracy in balanced.pairwise.values())
    told = style_report(
        [_styled_case(i, rng, " Take 400 mg every 6 hours, at most 1,200 mg a day.") for i in range(60)]
    )
    assert told.pairwise["correct/subtle"] > 0.9 and told.pairwise["correct/obvious"] > 0.9
    assert told.longest_share["correct"] == 1.0


def test_bank_check_reports_a_style_tell(tmp_path):
    entries = []
    for i, question in enumerate(QUESTIONS, start=1):
        entry = case(i, question=question)
        entry["answers"]["correct"] += " Keep the area clean, dry and loosely covered for 24 to 48 hours."
        entries.append(entry)
    problems = check_bank("demo", write_bank(tmp_path, entries)).problems
    assert "demo: the correct answer is the longest in 100% of cases: length would reveal the variant" in problems
    assert any(p.startswith("demo: subtle answers average") for p in problems)


def test_bank_check_runs_the_style_classifier_from_twenty_cases(tmp_path):
    entries = []
    for i in range(1, 31):
        entry = case(
            1,
            question=f"Question {i}: "
            + " ".join(["why", "how", "when", "where", "which"][j % 5] + str(i * j) for j in range(i % 7 + 3)),
        )
        entry["id"] = f"demo-{i:03d}"
        entry["answers"]["correct"] = entry["answers"]["correct"].replace(
            "twenty minutes", "twenty minutes (per NHS and AAD guidance)"
        )
        entries.append(entry)
    problems = check_bank("demo", write_bank(tmp_path, entries)).problems
    assert any("surface style alone tells correct/subtle apart 100% of the time" in p for p in problems)


def test_identical_answers_score_exactly_chance():
    """Ties must not favour the true order of the answers (the order they are listed in)."""
    from emgen.bank_style import style_report
    from emgen.generators.bank import Case

    text = "Rinse the burn under cool running water for twenty minutes, then cover it loosely."
    cases = [
        Case(f"demo-{i:03d}", "t", f"q{i}", dict.fromkeys(("correct", "subtle", "obvious"), text), {})
        for i in range(10)
    ]
    assert style_report(cases).pairwise == dict.fromkeys(("correct/subtle", "correct/obvious", "subtle/obvious"), 0.5)
