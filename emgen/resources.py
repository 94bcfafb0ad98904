"""Access to the data files shipped inside the package (schemas, prompts, templates, bank)."""

from __future__ import annotations

import json
import os
import sys
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from emgen.errors import EmgenError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def read_text(*parts: str) -> str:
    return resources.files("emgen").joinpath(*parts).read_text(encoding="utf-8")


def parse_toml(text: str, where: str, error: type[EmgenError] = EmgenError) -> dict[str, Any]:
    """TOML ``text``; malformed text raises ``error`` as ``<where>: not valid TOML (…)``."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{where}: not valid TOML ({exc})") from None


def read_toml(*parts: str, error: type[EmgenError] = EmgenError) -> dict[str, Any]:
    """The package's TOML data file ``emgen/<parts…>``."""
    return parse_toml(read_text(*parts), "emgen/" + "/".join(parts), error)


def read_models_file(path: str | os.PathLike[str], what: str, error: type[EmgenError]) -> dict[str, Any]:
    """The ``[models.NAME]`` tables of a user's TOML file that adds to a built-in models table."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} file ({exc.strerror})") from None
    models = parse_toml(text, str(path), error).get("models")
    if not isinstance(models, dict) or not models:
        raise error(f"{path}: no [models.NAME] tables")
    return models


@cache
def schema(name: str) -> dict[str, Any]:
    """The JSON Schema ``emgen/schemas/<name>.schema.json``."""
    return json.loads(read_text("schemas", f"{name}.schema.json"))


@cache
def validator(name: str) -> jsonschema.protocols.Validator:
    document = schema(name)
    cls = jsonschema.validators.validator_for(document)
    cls.check_schema(document)
    return cls(document, format_checker=cls.FORMAT_CHECKER)


def schema_errors(name: str, instance: Any) -> list[str]:
    """Every violation of schema ``name`` by ``instance``, as short readable strings."""
    errors = sorted(validator(name).iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [_describe(error) for error in errors]


def _describe(error: jsonschema.ValidationError) -> str:
    path = "/".join(str(part) for part in error.absolute_path)
    message = error.message
    if len(message) > 160:
        message = message[:157] + "..."
    return f"{path}: {message}" if path else message
