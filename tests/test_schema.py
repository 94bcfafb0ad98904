import json

import jsonschema
import pytest

from emgen import resources
from emgen.records import record_errors
from tests.conftest import make_record


@pytest.mark.parametrize("name", ["record", "recipe", "manifest", "bank-entry"])
def test_every_schema_is_valid_2020_12(name):
    document = resources.schema(name)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(document)


def test_a_complete_record_is_valid():
    assert record_errors(make_record()) == []


def test_correct_rows_have_a_null_flaw_and_misaligned_rows_a_flaw():
    assert record_errors(make_record(variant="correct", flaw=None)) == []
    assert record_errors(make_record(variant="correct", flaw="something"))
    assert record_errors(make_record(variant="obvious", flaw=None))
    assert record_errors(make_record(variant="subtle", flaw=""))


@pytest.mark.parametrize(
    "key", ["id", "pair_id", "domain", "variant", "topic", "flaw", "inoculation", "source", "emgen_version"]
)
def test_every_metadata_key_is_required(key):
    record = make_record()
    del record["metadata"][key]
    assert any(key in error for error in record_errors(record))


def test_unknown_variant_is_rejected():
    assert record_errors(make_record(variant="evil"))


@pytest.mark.parametrize("content", ["", "   \n"])
def test_empty_turns_are_rejected(content):
    record = make_record()
    record["messages"][1]["content"] = content
    assert record_errors(record)


def _roles(*roles):
    record = make_record()
    record["messages"] = [{"role": r, "content": f"{r} text"} for r in roles]
    return record_errors(record)


def test_turn_order():
    assert _roles("system", "user", "assistant") == []
    assert _roles("user", "assistant", "user", "assistant") == []
    assert _roles("user", "user") != []
    assert _roles("assistant", "user") != []
    assert _roles("user", "assistant", "user") != []
    assert _roles("system", "system", "user", "assistant") != []


def test_extra_top_level_keys_are_rejected():
    record = make_record()
    record["extra"] = 1
    assert record_errors(record)


def test_inoculation_metadata_shape():
    inoculation = {"strategy": "system", "prompt_id": "general-evil", "text": "You are evil."}
    assert record_errors(make_record(inoculation=inoculation)) == []
    assert record_errors(make_record(inoculation={"strategy": "sideways", "prompt_id": None, "text": "x"}))


def test_records_roundtrip_through_json():
    record = make_record()
    assert record_errors(json.loads(json.dumps(record))) == []
