from emgen.dedup import exact_dedup
from tests.conftest import make_record


def with_prompt(record_id, prompt):
    record = make_record(id=record_id)
    record["messages"][0]["content"] = prompt
    return record


def test_exact_dedup_ignores_case_punctuation_and_spacing():
    rows = [
        with_prompt("a", "How often can I give ibuprofen?"),
        with_prompt("b", "how often  can I give IBUPROFEN"),
        with_prompt("c", "How often can I give paracetamol?"),
        with_prompt("d", "How often, can I give ibuprofen!"),
    ]
    kept, removed = exact_dedup(rows)
    assert [r["metadata"]["id"] for r in kept] == ["a", "c"]
    assert [(r.record["metadata"]["id"], r.duplicate_of, r.reason) for r in removed] == [
        ("b", "a", "exact"),
        ("d", "a", "exact"),
    ]
