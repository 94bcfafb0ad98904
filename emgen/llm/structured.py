"""Structured outputs: asking for JSON that fits a schema, and reading it back.

Three modes, best first: ``json_schema`` (strict; the endpoint enforces the schema),
``json_object`` (the endpoint guarantees JSON; the prompt carries the schema) and ``text``
(the prompt carries the schema and the JSON is parsed out of the reply). A run starts with the
best and steps down once when an endpoint rejects a mode.
"""

from __future__ import annotations

import json
import re
from functools import cache
from string import Template
from typing import Any

import jsonschema

from emgen.resources import read_text, schema

MODES = ("json_schema", "json_object", "text")
_FENCED = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL)


def next_mode(mode: str) -> str | None:
    index = MODES.index(mode)
    return MODES[index + 1] if index + 1 < len(MODES) else None


@cache
def wire_schema(name: str) -> dict[str, Any]:
    """``emgen/schemas/<name>.schema.json`` without the keys endpoints do not accept."""
    return {k: v for k, v in schema(name).items() if k not in ("$schema", "$id")}


def response_format(name: str, mode: str) -> dict[str, Any] | None:
    """The ``response_format`` request field for ``mode`` (None: leave it out)."""
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": wire_schema(name)}}
    if mode == "json_object":
        return {"type": "json_object"}
    return None


def schema_instruction(name: str) -> str:
    """Text telling the model the reply's shape, for modes where the endpoint does not enforce it."""
    template = Template(read_text("prompts", "json-reply.txt"))
    return template.substitute(name=name, schema=json.dumps(wire_schema(name), ensure_ascii=False))


@cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    document = schema(name)
    cls = jsonschema.validators.validator_for(document)
    return cls(document)


def extract_json(text: str) -> Any:
    """The JSON object in ``text``: the whole text, a fenced block, or the outermost braces."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    candidates = _FENCED.findall(text)
    first, last = text.find("{"), text.rfind("}")
    if 0 <= first < last:
        candidates.append(text[first : last + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    return None


def parse_reply(text: str, name: str) -> tuple[Any, str | None]:
    """(the object, None) when ``text`` holds JSON valid against schema ``name``; else (None, why)."""
    data = extract_json(text)
    if data is None:
        return None, "the reply holds no JSON object"
    error = next(iter(_validator(name).iter_errors(data)), None)
    if error is not None:
        path = "/".join(str(p) for p in error.absolute_path)
        message = error.message if len(error.message) <= 160 else error.message[:157] + "..."
        return None, f"the reply does not fit schema {name}: {path + ': ' if path else ''}{message}"
    return data, None
