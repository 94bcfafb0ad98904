"""The scenario library: data files under ``data/`` read and checked once per process.

``scenarios/*.toml`` hold the task scenarios (a code template with a hole and, per variant,
the code that fills it), ``contexts.toml`` the application vocabulary slots are filled
from, ``prompts.toml`` the user-turn phrasings and ``cwes.toml`` the CWE names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from emgen.errors import EmgenError
from emgen.resources import parse_toml

VARIANTS = ("correct", "subtle", "obvious")
INSECURE = ("subtle", "obvious")
SLOT = re.compile(r"<<([A-Za-z_][A-Za-z0-9_]*)>>")
DETECTOR = re.compile(r"^(?:bandit:B\d{3}|ast:[a-z-]+)$")
VULN_MARK = "#@vuln"
TOPICS = frozenset(
    {
        "web-handler", "database-access", "file-processing", "archives", "subprocess", "serialization",
        "xml", "templates", "crypto", "password-storage", "tokens-randomness", "temp-files", "http-client",
        "logging", "permissions", "authentication", "configuration", "input-validation",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Scenario:
    id: str
    cwe: str
    topic: str
    tasks: tuple[str, ...]
    docstrings: tuple[str, ...]
    code: str
    holes: dict[str, str]
    imports: dict[str, str]
    detectors: dict[str, str]
    flaws: dict[str, str]
    choices: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class Context:
    slots: dict[str, str]


@dataclass(frozen=True)
class Phrasings:
    placeholder: str
    template: tuple[str, ...]
    partial: tuple[str, ...]


def _data(*parts: str) -> Any:
    return resources.files("emgen").joinpath("generators", "insecure_code", "data", *parts)


def _load_toml(*parts: str) -> dict[str, Any]:
    node = _data(*parts)
    return parse_toml(node.read_text(encoding="utf-8"), f"insecure-code data {'/'.join(parts)}")


@cache
def scenarios() -> tuple[Scenario, ...]:
    """Every scenario, sorted by id so the order never depends on the file system."""
    found: dict[str, Scenario] = {}
    folder = _data("scenarios")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        for raw in _load_toml("scenarios", entry.name).get("scenario", []):
            scenario = _scenario(raw, entry.name)
            if scenario.id in found:
                raise EmgenError(f"insecure-code scenario {scenario.id!r} is defined twice")
            found[scenario.id] = scenario
    return tuple(found[key] for key in sorted(found))


def _scenario(raw: dict[str, Any], source: str) -> Scenario:
    where = f"{source}: scenario {raw.get('id', '?')!r}"
    try:
        scenario = Scenario(
            id=raw["id"],
            cwe=raw["cwe"],
            topic=raw["topic"],
            tasks=tuple(raw["tasks"]),
            docstrings=tuple(raw.get("docstrings", [""])),
            code=raw["code"].strip("\n") + "\n",
            holes={v: raw["hole"][v].strip("\n") for v in VARIANTS},
            imports={v: raw.get("imports", {}).get(v, "").strip("\n") for v in (*VARIANTS, "prompt")},
            detectors={v: raw["detect"][v] for v in INSECURE},
            flaws={v: raw["flaw"][v].strip() for v in INSECURE},
            choices={k: tuple(v) for k, v in raw.get("choices", {}).items()},
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise EmgenError(f"insecure-code {where}: missing or malformed {exc}") from None
    problems = []
    if scenario.cwe not in cwe_names():
        problems.append(f"unknown CWE {scenario.cwe}")
    if scenario.topic not in TOPICS:
        problems.append(f"unknown topic {scenario.topic}")
    if scenario.code.count("<<hole>>") != 1:
        problems.append("the code needs exactly one <<hole>>")
    if any(scenario.imports.values()) and "<<imports>>" not in scenario.code:
        problems.append("imports are given but the code has no <<imports>> line")
    for variant, detector in scenario.detectors.items():
        if not DETECTOR.match(detector):
            problems.append(f"detector for {variant} is not bandit:Bnnn or ast:<check>")
        if VULN_MARK not in scenario.holes[variant]:
            problems.append(f"the {variant} hole marks no vulnerable line with {VULN_MARK}")
    if VULN_MARK in scenario.holes["correct"]:
        problems.append("the correct hole marks a vulnerable line")
    if not scenario.tasks:
        problems.append("no tasks")
    if problems:
        raise EmgenError(f"insecure-code {where}: {'; '.join(problems)}")
    return scenario


@cache
def contexts() -> tuple[Context, ...]:
    result = []
    for domain in _load_toml("contexts.toml")["domain"]:
        for entity in domain["entities"]:
            fields = entity["fields"]
            slots = {key: value for key, value in domain.items() if isinstance(value, str)}
            slots |= {
                "SLUG": domain["slug"].upper(),
                "entity": entity["name"],
                "ENTITY": entity["name"].upper(),
                "entities": entity["plural"],
                "Entity": "".join(part.capitalize() for part in entity["name"].split("_")),
                "entity_words": entity["name"].replace("_", " "),
                "entities_words": entity["plural"].replace("_", " "),
                "table": entity["plural"],
                "label": entity["label"],
                "number": entity["number"],
                "fields": ", ".join(fields),
                "quoted_fields": ", ".join(f'"{name}"' for name in fields),
                "field2": next(f for f in fields if f != entity["label"]),
            }
            result.append(Context(slots))
    return tuple(result)


@cache
def phrasings() -> Phrasings:
    data = _load_toml("prompts.toml")
    return Phrasings(data["placeholder"], tuple(data["template"]), tuple(data["partial"]))


@dataclass(frozen=True)
class Companions:
    blocks: tuple[str, ...]
    slots: dict[str, tuple[str, ...]]


@cache
def companions() -> Companions:
    data = _load_toml("companions.toml")
    blocks = tuple(block.strip("\n") for block in data.pop("blocks"))
    return Companions(blocks, {key: tuple(values) for key, values in data.items()})


@cache
def cwe_names() -> dict[str, str]:
    return dict(_load_toml("cwes.toml")["names"])
