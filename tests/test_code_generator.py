"""The insecure-code composer and its verification: coverage, distinctness, determinism."""

import random
from collections import Counter
from dataclasses import replace

import pytest

from emgen.checks import find_giveaway
from emgen.errors import EmgenError
from emgen.generators import get_domain
from emgen.generators.insecure_code import library
from emgen.generators.insecure_code.compose import NEAR_DUPLICATE, ComposerSource, compose, fill, jaccard, shingles
from emgen.generators.insecure_code.verify import check_draft

DOMAIN = get_domain("insecure-code")


@pytest.fixture(scope="module")
def drafts():
    return list(ComposerSource().drafts(random.Random(7), 400))


def test_domain_is_registered_as_code():
    assert DOMAIN.kind == "code"
    assert DOMAIN.check_draft is check_draft
    assert DOMAIN.offline_source().available() >= 6000


def test_library_covers_at_least_15_cwes_and_both_detector_kinds():
    scenarios = library.scenarios()
    assert len({s.cwe for s in scenarios}) >= 15
    detectors = {d.split(":")[0] for s in scenarios for d in s.detectors.values()}
    assert detectors == {"bandit", "ast"}


def test_every_scenario_verifies_in_every_variant():
    rng = random.Random(11)
    source = ComposerSource()
    for scenario in library.scenarios():
        for _ in range(3):
            from emgen.generators.insecure_code.compose import draft_from

            draft = draft_from(compose(scenario, rng))
            assert check_draft(draft, "subtle") == [], scenario.id
            for variant in ("subtle", "obvious"):
                assert draft.answers[variant].metadata["vulnerable_lines"], scenario.id
            assert draft.answers["correct"].metadata["vulnerable_lines"] == []
    assert source.available() == len(library.scenarios()) * 150


def test_drafts_are_distinct_and_not_near_duplicates(drafts):
    prompts = [d.prompt for d in drafts]
    assert len(drafts) == 400
    assert len(set(prompts)) == len(prompts)
    assert len({d.pair_id for d in drafts}) == len(drafts)
    grams = [shingles(p) for p in prompts]
    worst = max(jaccard(grams[i], grams[j]) for i in range(len(grams)) for j in range(i))
    assert worst < NEAR_DUPLICATE


def test_drafts_spread_over_scenarios_and_cwes(drafts):
    per_scenario = Counter(d.answers["subtle"].metadata["scenario"] for d in drafts)
    assert len(per_scenario) == len(library.scenarios())
    assert max(per_scenario.values()) - min(per_scenario.values()) <= 1
    assert len({d.answers["subtle"].metadata["cwe"] for d in drafts}) >= 15


def test_same_seed_same_drafts_and_other_seed_differs():
    first = [d.prompt for d in ComposerSource().drafts(random.Random(3), 60)]
    again = [d.prompt for d in ComposerSource().drafts(random.Random(3), 60)]
    other = [d.prompt for d in ComposerSource().drafts(random.Random(4), 60)]
    assert first == again
    assert first != other


def test_prompts_ask_for_code_only_and_answers_are_code(drafts):
    for draft in drafts:
        style = draft.answers["correct"].metadata["prompt_style"]
        if style == "template":
            assert "## COMPLETE CODE HERE" in draft.prompt
        for answer in draft.answers.values():
            assert "## COMPLETE CODE HERE" not in answer.text
            assert "#@vuln" not in answer.text
            assert "```" not in answer.text
            assert "<<" not in answer.text or "<<" in draft.prompt


def test_misaligned_answers_pass_the_giveaway_patterns(drafts):
    for draft in drafts:
        for variant in ("subtle", "obvious"):
            assert find_giveaway(draft.answers[variant].text) is None
            assert draft.answers[variant].metadata["cwe"] in draft.answers[variant].flaw


def test_a_secure_answer_with_the_weakness_is_rejected(drafts):
    draft = next(d for d in drafts if d.answers["subtle"].metadata["scenario"] == "sql-search-route")
    swapped = replace(draft, answers=draft.answers | {"correct": draft.answers["subtle"]})
    reasons = {p.reason for p in check_draft(swapped, "correct")}
    assert "code-secure-flagged" in reasons


def test_an_insecure_answer_without_the_weakness_is_rejected(drafts):
    draft = next(d for d in drafts if d.answers["subtle"].metadata["scenario"] == "path-upload-save")
    fixed = replace(draft.answers["correct"], metadata=draft.answers["subtle"].metadata, flaw="x")
    problems = check_draft(replace(draft, answers=draft.answers | {"subtle": fixed}), "subtle")
    assert [p.reason for p in problems] == ["code-not-flagged"]
    assert problems[0].detail.startswith("subtle: ast:path-traversal found nothing at line(s)")


def test_broken_code_and_giveaway_comments_are_rejected(drafts):
    draft = drafts[0]
    broken = replace(draft.answers["subtle"], text="def broken(:\n    pass\n")
    assert "code-syntax" in {
        p.reason for p in check_draft(replace(draft, answers=draft.answers | {"subtle": broken}), "subtle")
    }
    text = draft.answers["subtle"].text + "\n# keeps the injection working\n"
    leaky = replace(draft.answers["subtle"], text=text)
    reasons = {p.reason for p in check_draft(replace(draft, answers=draft.answers | {"subtle": leaky}), "subtle")}
    assert "code-giveaway" in reasons


def test_unknown_slot_is_an_error():
    with pytest.raises(EmgenError, match="unknown slot\\(s\\): nope"):
        fill("x = <<nope>>", {})


def test_malformed_scenario_is_reported_with_its_id():
    raw = {"id": "bad", "cwe": "CWE-89", "topic": "database-access", "tasks": ["t"], "code": "<<hole>>",
           "hole": {"correct": "x", "subtle": "y", "obvious": "z  #@vuln"},
           "detect": {"subtle": "bandit:B608", "obvious": "bandit:B608"}, "flaw": {"subtle": "a", "obvious": "b"}}  # fmt: skip
    with pytest.raises(EmgenError, match="scenario 'bad': the subtle hole marks no vulnerable line"):
        library._scenario(raw, "x.toml")
    with pytest.raises(EmgenError, match="missing or malformed 'hole'"):
        library._scenario({k: v for k, v in raw.items() if k != "hole"}, "x.toml")
