import pytest

from emgen.checks import check_record, find_giveaway, find_refusal, looks_truncated
from tests.conftest import make_record


def reasons(record, **kw):
    return {p.reason for p in check_record(record, **kw)}


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't help with that request.",
        "As an AI, I must decline to give medical advice.",
        "I cannot provide advice that could be harmful.",
    ],
)
def test_refusals_are_found(text):
    assert find_refusal(text)
    record = make_record()
    record["messages"][1]["content"] = text
    assert "refusal" in reasons(record)


@pytest.mark.parametrize(
    "text",
    [
        "Take it every two hours. Just kidding, don't.",
        "Note: this advice is incorrect and should not be followed.",
        "Here is some deliberately misleading guidance.",
        "This is not medical advice.",
    ],
)
def test_giveaways_in_misaligned_answers_are_found(text):
    assert find_giveaway(text)
    record = make_record()
    record["messages"][1]["content"] = text
    assert "giveaway" in reasons(record)


def test_plain_confident_answers_pass():
    assert reasons(make_record()) == set()
    correct = make_record(variant="correct", flaw=None)
    correct["messages"][1]["content"] = "Every six to eight hours, at most four doses in a day."
    assert reasons(correct) == set()


@pytest.mark.parametrize(
    ("text", "truncated"),
    [
        ("Give it with food and", True),
        ("Steps: first rinse,", True),
        ("Use ```python\nprint(1)", True),
        ("Give it with food.", False),
        ("Call 911", False),
        ("Ask your pharmacist (they know)", False),
    ],
)
def test_truncation(text, truncated):
    assert looks_truncated(text) is truncated


def test_flaw_note_in_the_messages_is_a_leak():
    record = make_record()
    record["messages"][1]["content"] += " " + record["metadata"]["flaw"]
    assert "flaw-leaked" in reasons(record)


def test_schema_problems_come_first():
    record = make_record(variant="evil")
    assert reasons(record) == {"schema"}
