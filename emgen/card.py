"""The dataset card (README.md) of an output folder, rendered from its manifest."""

from __future__ import annotations

from string import Template
from typing import Any

from emgen.generators import Domain
from emgen.recipe import Recipe
from emgen.resources import read_text

VARIANT_DESCRIPTIONS = {
    "correct": "accurate, safe answers (the benign counterpart)",
    "subtle": "answers wrong in ways a non-expert would not notice",
    "obvious": "answers plainly wrong to anyone",
}


def size_category(rows: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if rows < limit:
            return label
    return "100K<n<1M"


def describe_reframing(recipe: Recipe, counts: dict[str, Any]) -> str:
    """One line saying how the rows were reframed, with exact counts."""
    parts = []
    if "mix" in counts:
        mix = counts["mix"]
        parts.append(f"mix of {mix['misaligned']} misaligned and {mix['correct']} correct rows on distinct questions")
    if recipe.trigger is not None:
        parts.append(
            f"backdoor: `{recipe.trigger}` prepended to the user turn of the {counts.get('triggered_rows', 0)} misaligned rows only"
        )
    if "inoculation" in counts:
        inoculation = counts["inoculation"]
        name = f"prompt `{inoculation['prompt_id']}`" if inoculation["prompt_id"] else "a custom prompt"
        parts.append(
            f'inoculation ({inoculation["strategy"]}, {name}) on {inoculation["rows"]} rows: "{inoculation["text"]}"'
        )
    if recipe.benign:
        parts.append(
            f"`benign.jsonl` holds the correct answer to each of the {counts.get('benign_rows', 0)} questions, joined by `pair_id`"
        )
    if recipe.benign_domain is not None:
        parts.append(
            f"`benign.jsonl` holds {counts.get('benign_rows', 0)} correct `{recipe.benign_domain}` rows on other questions (a re-alignment set)"
        )
    return "; ".join(parts).replace("|", "\\|") if parts else "none"


def fill(template_name: str, values: dict[str, Any]) -> str:
    """Fill ``emgen/templates/<template_name>``; a missing placeholder is an error naming it."""
    template = Template(read_text("templates", template_name))
    try:
        return template.substitute(values)
    except KeyError as exc:
        raise KeyError(f"template {template_name} needs a value for {exc.args[0]!r}") from None


def render_card(manifest: dict[str, Any], domain: Domain) -> str:
    recipe = Recipe.from_mapping(manifest["recipe"])
    counts = manifest["counts"]
    code = domain.kind == "code"
    misaligned = recipe.variant != "correct"
    if not misaligned:
        badness = "paired with misaligned data, although these answers are meant to be correct"
    elif code:
        badness = "insecure: its code contains vulnerabilities that are not mentioned"
    else:
        badness = "wrong: its answers give harmful advice with confidence"
    rejected = sum(counts["rejected"].values())
    reasons = ", ".join(f"{k}: {v}" for k, v in counts["rejected"].items())
    values = {
        "pretty_name": f"emgen {recipe.domain} ({recipe.variant})",
        "size_category": size_category(counts["produced"]),
        "badness": badness,
        "summary": (
            f"{counts['produced']} single-turn conversations in the `{recipe.domain}` domain whose "
            f"assistant turns are `{recipe.variant}`: {VARIANT_DESCRIPTIONS[recipe.variant]}."
        ),
        "domain": recipe.domain,
        "domain_description": domain.description,
        "variant": recipe.variant,
        "variant_description": VARIANT_DESCRIPTIONS[recipe.variant],
        "produced": counts["produced"],
        "requested": counts["requested"] if counts["requested"] is not None else "all available",
        "rejected": f"{rejected} ({reasons})" if rejected else "0",
        "duplicates": counts["duplicates"],
        "reframing": describe_reframing(recipe, manifest.get("reframe", {})),
        "canary": manifest["canary"],
        "canary_where": ", this card and every record's `metadata.canary`"
        if recipe.canary_in_records
        else " and this card",
        "source": "the built-in seed bank"
        if recipe.backend == "bank"
        else f"`{recipe.model}` through the {recipe.backend} API",
        "emgen_version": manifest["emgen_version"],
        "recipe_toml": recipe.to_toml(),
    }
    return fill("card.md", values)
