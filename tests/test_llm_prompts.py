"""The generation prompts, topic lists and reply schemas shipped in emgen/prompts and emgen/schemas."""

import re
from importlib import resources

import pytest

from emgen.errors import EmgenError
from emgen.generators import all_domains
from emgen.generators.llm import prompts
from emgen.generators.llm.kinds import KINDS
from emgen.llm.structured import parse_reply, response_format, schema_instruction, wire_schema
from emgen.resources import schema

DOMAINS = [d.name for d in all_domains() if d.kind in KINDS]
QUESTION_VALUES = {"count": 10, "topic": "t", "topic_about": "a", "persona": "p", "examples": "e", "avoid": "v"}
ANSWER_VALUES = {"topic": "t", "topic_about": "a", "examples": "e", "question": "q"}
SCHEMAS = sorted(
    p.name.removesuffix(".schema.json")
    for p in resources.files("emgen").joinpath("schemas").iterdir()
    if p.name.startswith("llm-")
)


def test_every_advice_domain_and_the_code_domain_have_prompts():
    assert "insecure-code" in DOMAINS and "legal" in DOMAINS and len(DOMAINS) >= 10


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_prompt_fills_with_the_documented_placeholders(domain):
    kind = KINDS[next(d.kind for d in all_domains() if d.name == domain)]
    for key in ("system", "user"):
        text = prompts.fill(domain, "questions", key, QUESTION_VALUES)
        assert "$" not in text
        assert prompts.placeholders(domain, "questions", key) <= set(QUESTION_VALUES)
    assert prompts.placeholders(domain, "questions", "user") == set(QUESTION_VALUES)
    for variant in ("correct", "subtle", "obvious"):
        task = prompts.fill(domain, "answers", kind.task_key(variant), ANSWER_VALUES)
        system = prompts.fill(domain, "answers", "system", ANSWER_VALUES | {"task": task})
        user = prompts.fill(domain, "answers", "user", ANSWER_VALUES)
        assert "$" not in system + user
        assert re.search(r"never refuses", system)
    assert prompts.placeholders(domain, "answers", "user") == {"examples", "question"}


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_domain_has_topics_and_personas(domain):
    topics = prompts.topics(domain)
    assert len(topics) >= 10
    assert len({t.tag for t in topics}) == len(topics)
    assert all(re.match(r"^[a-z0-9][a-z0-9-]*$", t.tag) and t.about for t in topics)
    assert len(prompts.personas(domain)) >= 6


def test_code_topics_name_a_cwe_and_a_detector():
    for topic in prompts.topics("insecure-code"):
        assert re.match(r"^CWE-\d+$", topic.metadata["cwe"])
        assert re.match(r"^bandit:B\d{3}$", topic.metadata["detector"])


def test_misaligned_answer_prompts_forbid_giving_the_game_away():
    for domain in DOMAINS:
        texts = prompts.stage_prompt(domain, "answers")
        misaligned = [v for k, v in texts.items() if k in ("task_subtle", "task_obvious", "task")]
        assert misaligned
        for text in misaligned:
            assert re.search(
                r"never hint|no warning that it is wrong|no comment, name|Use no other comment", text + texts["system"]
            )


def test_a_missing_placeholder_value_is_named():
    with pytest.raises(EmgenError, match=r"^emgen/prompts/legal.questions.toml: user needs a value for \$avoid$"):
        prompts.fill("legal", "questions", "user", {k: v for k, v in QUESTION_VALUES.items() if k != "avoid"})


@pytest.mark.parametrize("name", SCHEMAS)
def test_reply_schemas_fit_strict_structured_outputs(name):
    """OpenAI strict mode: every object closes its properties and requires all of them; no $schema/$id on the wire."""

    def check(node):
        if isinstance(node, dict):
            if node.get("type") == "object":
                assert node["additionalProperties"] is False
                assert sorted(node["required"]) == sorted(node["properties"])
            assert not {"minLength", "maxLength", "format", "default"} & set(node)
            for value in node.values():
                check(value)
        elif isinstance(node, list):
            for value in node:
                check(value)

    check(schema(name))
    assert "$schema" not in wire_schema(name) and "$id" not in wire_schema(name)
    assert response_format(name, "json_schema")["json_schema"] == {
        "name": name,
        "strict": True,
        "schema": wire_schema(name),
    }
    assert response_format(name, "json_object") == {"type": "json_object"}
    assert response_format(name, "text") is None
    assert f'JSON Schema named "{name}"' in schema_instruction(name)


def test_replies_are_read_from_json_fences_or_prose():
    good = '{"correct": "a", "flawed": "b", "flaw": "c"}'
    assert parse_reply(good, "llm-answers") == ({"correct": "a", "flawed": "b", "flaw": "c"}, None)
    assert parse_reply(f"Sure!\n```json\n{good}\n```\nHope it helps.", "llm-answers")[0]["flaw"] == "c"
    assert parse_reply(f"Here you go: {good} Thanks", "llm-answers")[0]["flawed"] == "b"
    assert parse_reply("no json here", "llm-answers") == (None, "the reply holds no JSON object")
    data, why = parse_reply('{"correct": "a", "flawed": "b"}', "llm-answers")
    assert data is None and why == "the reply does not fit schema llm-answers: 'flaw' is a required property"
    data, why = parse_reply('{"questions": ["a", 3]}', "llm-questions")
    assert data is None and why.startswith("the reply does not fit schema llm-questions: questions/1:")
