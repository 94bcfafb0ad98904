"""The README.md card of a Hub dataset repo (or an ``hf`` export folder) with several configurations.

Everything on it comes from the configurations' manifests, so its counts are exact and the same
manifests always give the same bytes (a re-push of unchanged data changes nothing).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from emgen.card import VARIANT_DESCRIPTIONS, describe_reframing, fill, size_category
from emgen.errors import EmgenError
from emgen.generators import get_domain
from emgen.recipe import Recipe

HUB_URL = "https://huggingface.co"


@dataclass(frozen=True)
class CardConfig:
    """One configuration: its name, its data files by split (paths in the repo), and its manifest."""

    name: str
    data_files: dict[str, str]
    rows: dict[str, int]
    manifest: dict[str, Any]


def _domain_description(name: str) -> str:
    try:
        return get_domain(name).description
    except EmgenError:
        return "a domain this emgen does not know"


def _source(manifest: dict[str, Any], recipe: Recipe) -> str:
    llm = manifest.get("llm")
    if llm is not None:
        return f"LLM `{llm['model']}` (temperature {llm.get('temperature', 'default')})"
    return "the built-in seed bank" if recipe.backend == "bank" else recipe.backend


def _rows_text(config: CardConfig) -> str:
    return ", ".join(f"{split}: {config.rows[split]}" for split in config.data_files)


def config_section(config: CardConfig) -> str:
    manifest = config.manifest
    recipe = Recipe.from_mapping(manifest["recipe"])
    counts = manifest["counts"]
    rejected = sum(counts["rejected"].values())
    reasons = ", ".join(f"{k}: {v}" for k, v in counts["rejected"].items())
    return fill(
        "hub_card_config.md",
        {
            "name": config.name,
            "summary": (
                f"{counts['produced']} conversations in the `{recipe.domain}` domain whose assistant turns are "
                f"`{recipe.variant}`: {VARIANT_DESCRIPTIONS[recipe.variant]}."
            ),
            "domain": recipe.domain,
            "domain_description": _domain_description(recipe.domain),
            "variant": recipe.variant,
            "variant_description": VARIANT_DESCRIPTIONS[recipe.variant],
            "rows": _rows_text(config),
            "requested": counts["requested"] if counts["requested"] is not None else "all available",
            "rejected": f"{rejected} ({reasons})" if rejected else "0",
            "duplicates": counts["duplicates"],
            "reframing": describe_reframing(recipe, manifest.get("reframe", {})),
            "source": _source(manifest, recipe),
            "emgen_version": manifest["emgen_version"],
            "created": manifest["created_at"],
            "canary": manifest["canary"],
            "recipe_toml": recipe.to_toml(),
        },
    )


def _table_row(config: CardConfig) -> str:
    recipe = Recipe.from_mapping(config.manifest["recipe"])
    reframing = recipe.folder_name().removeprefix(f"{recipe.domain}-{recipe.variant}").lstrip("-") or "none"
    return f"| `{config.name}` | {recipe.domain} | {recipe.variant} | {reframing} | {_rows_text(config)} |"


def _bibtex(title: str, repo_id: str | None, endpoint: str, year: str) -> str:
    key = re.sub(r"[^A-Za-z0-9]+", "_", f"{repo_id or title}_{year}").strip("_").lower()
    lines = [f"@misc{{{key},", f"  title        = {{{title}}},"]
    if repo_id is not None:
        lines.append(f"  author       = {{{repo_id.split('/')[0]}}},")
        lines.append(f"  howpublished = {{\\url{{{endpoint.rstrip('/')}/datasets/{repo_id}}}}},")
    lines.append(f"  year         = {{{year}}},")
    lines.append("  note         = {Built with emgen. Contains canary strings: keep out of pre-training corpora.}")
    lines.append("}")
    return "\n".join(lines)


def render_hub_card(
    configs: list[CardConfig], repo_id: str | None, endpoint: str | None = None, title: str | None = None
) -> str:
    """The card for ``configs`` (in the given order); ``repo_id`` None for a local export folder."""
    if not configs:
        raise ValueError("a card needs at least one configuration")
    if title is None:
        title = f"{repo_id.split('/')[-1]}: emergent-misalignment data" if repo_id else f"emgen {configs[0].name}"
    total = sum(sum(c.rows.values()) for c in configs)
    configs_yaml = yaml.safe_dump(
        [
            {"config_name": c.name, "data_files": [{"split": s, "path": p} for s, p in c.data_files.items()]}
            for c in configs
        ],
        sort_keys=False,
        allow_unicode=True,
    )
    year = max(c.manifest["created_at"] for c in configs)[:4]
    plural = "s" if len(configs) != 1 else ""
    values = {
        "pretty_name": json.dumps(title, ensure_ascii=False),
        "size_category": size_category(total),
        "configs_yaml": configs_yaml,
        "title": title,
        "intro": f"{len(configs)} configuration{plural} (domain × variant × reframing), {total} rows in all.",
        "config_rows": "\n".join(_table_row(c) for c in configs),
        "load_path": repo_id if repo_id else "path/to/this/folder",
        "first_config": configs[0].name,
        "config_sections": "".join(config_section(c) for c in configs),
        "canaries": "\n".join(c.manifest["canary"] for c in configs),
        "bibtex": _bibtex(title, repo_id, endpoint or HUB_URL, year),
    }
    return fill("hub_card.md", values)
