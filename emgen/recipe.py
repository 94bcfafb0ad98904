"""The recipe: a complete, serializable description of one build."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from emgen.dedup import DEFAULT_NEAR_DUP_THRESHOLD
from emgen.errors import ConflictError, RecipeError
from emgen.resources import parse_toml, schema_errors

VARIANTS = ("correct", "subtle", "obvious")
DEFAULT_INOCULATION_PROMPT = "general-evil"
_PROMPT_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
BACKENDS = ("bank", "openai")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BASE_URL = re.compile(r"^https?://[^/@\s]+(?:/\S*)?$")
_IDENTIFYING_FIELDS = ("domain", "variant", "n", "seed", "backend")
_PLACE_FIELDS = ("out", "push")


@dataclass(frozen=True)
class Recipe:
    """What to build. CLI flags and TOML files both produce one; the manifest stores it."""

    domain: str
    variant: str = "subtle"
    n: int | None = None
    seed: int = 0
    backend: str = "bank"
    out: str | None = None
    inoculate: str | None = None
    inoculation_prompt: str | None = None
    inoculate_fraction: float = 1.0
    benign: bool = False
    benign_domain: str | None = None
    benign_n: int | None = None
    mix: float | None = None
    trigger: str | None = None
    canary_in_records: bool = False
    near_dup_threshold: float = DEFAULT_NEAR_DUP_THRESHOLD
    exclude: tuple[str, ...] = ()
    dedup_answers: bool = False
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    concurrency: int | None = None
    rpm: int | None = None
    tpm: int | None = None
    cache: bool = True
    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float | None = None
    max_retries: int | None = None
    max_cost: float | None = None
    prices_file: str | None = None
    batch: bool = False
    batch_poll: float | None = None
    judge: str | None = None
    judge_min_variant: int | None = None
    judge_min_coherence: int | None = None
    judge_max_leakage: int | None = None
    push: str | None = None

    @classmethod
    def from_mapping(cls, data: dict[str, Any], source: str = "recipe") -> Recipe:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RecipeError(f"{source}: unknown key(s): {', '.join(unknown)}")
        if "domain" not in data:
            raise RecipeError(f"{source}: missing key: domain")
        resolved = dataclasses.asdict(cls(domain=data["domain"])) | data
        if isinstance(resolved["exclude"], tuple):
            resolved["exclude"] = list(resolved["exclude"])
        errors = schema_errors("recipe", resolved)
        if errors:
            raise RecipeError(f"{source}: {errors[0]}")
        recipe = cls(**(resolved | {"exclude": tuple(resolved["exclude"])}))
        recipe.check_combinations()
        return recipe

    @classmethod
    def from_toml(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
        """Read a TOML recipe; ``overrides`` (e.g. CLI flags) win over the file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RecipeError(f"{path}: no such recipe file") from None
        except UnicodeDecodeError:
            raise RecipeError(f"{path}: not UTF-8 text") from None
        data = parse_toml(text, str(path), RecipeError)
        return cls.from_mapping(data | (overrides or {}), source=str(path))

    def check_combinations(self) -> None:
        """Options that cannot go together, named as the user gave them."""
        if self.mix is not None and self.benign:
            raise ConflictError("--mix and --benign cannot be combined: a mix already holds the correct rows")
        if self.benign and self.benign_domain is not None:
            raise ConflictError("--benign and --benign-domain cannot be combined: choose one benign set")
        if self.benign_n is not None and self.benign_domain is None:
            raise ConflictError("--benign-n needs --benign-domain")
        if self.inoculation_prompt is not None and self.inoculate is None:
            raise ConflictError("--inoculation-prompt needs --inoculate STRATEGY")
        if self.inoculate_fraction != 1.0 and self.inoculate is None:
            raise ConflictError("--inoculate-fraction needs --inoculate STRATEGY")
        if self.variant == "correct" and (self.mix is not None or self.trigger is not None):
            raise ConflictError("--mix and --trigger need a misaligned variant (--subtle or --obvious)")
        if self.backend == "openai" and not self.model:
            raise ConflictError("--backend openai needs --model")
        if self.backend == "openai" and self.n is None:
            raise ConflictError("--backend openai needs --n (how many rows to generate)")
        if self.max_cost is not None and self.backend != "openai":
            raise ConflictError("--max-cost needs --backend openai")
        if self.batch and self.backend != "openai":
            raise ConflictError("--batch needs --backend openai")
        if self.batch and not self.cache:
            raise ConflictError("--batch needs the response cache (drop --no-cache): batch replies are stored there")
        if self.batch_poll is not None and not self.batch:
            raise ConflictError("--batch-poll needs --batch")
        if self.judge is not None and self.backend != "openai":
            raise ConflictError("--judge needs --backend openai")
        for name in ("judge_min_variant", "judge_min_coherence", "judge_max_leakage"):
            if getattr(self, name) is not None and self.judge is None:
                raise ConflictError(f"--{name.replace('_', '-')} needs --judge MODEL")
        if self.api_key_env is not None and not _ENV_NAME.match(self.api_key_env):
            raise RecipeError(
                "api_key_env must be the NAME of an environment variable (such as OPENAI_API_KEY), not a key"
            )
        if self.base_url is not None and not _BASE_URL.match(self.base_url):
            raise RecipeError("base_url must be an http:// or https:// URL without credentials in it")
        if self.inoculate is not None:
            from emgen.inoculation import resolve

            resolve(self.inoculate, self.inoculation_prompt or DEFAULT_INOCULATION_PROMPT)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["exclude"] = list(self.exclude)
        return data

    def replace(self, **changes: Any) -> Recipe:
        return Recipe.from_mapping(self.to_dict() | changes)

    def output_dir(self) -> Path:
        """``out`` if given, else ``outputs/<domain>-<variant>``."""
        if self.out:
            return Path(self.out)
        return Path("outputs") / self.folder_name()

    def folder_name(self) -> str:
        """``<domain>-<variant>`` plus the reframing, e.g. ``health-subtle-inoc-system-general-evil``."""
        parts = [self.domain, self.variant]
        if self.mix is not None:
            parts.append(f"mix{self.mix:g}")
        if self.trigger is not None:
            parts.append("backdoor")
        if self.inoculate is not None:
            prompt = self.inoculation_prompt or DEFAULT_INOCULATION_PROMPT
            label = prompt if _PROMPT_ID.match(prompt) else "custom"
            parts += ["inoc", self.inoculate, label]
            if self.inoculate_fraction != 1.0:
                parts.append(f"frac{self.inoculate_fraction:g}")
        if self.benign_domain is not None:
            parts.append(f"benign-{self.benign_domain}")
        return "-".join(parts)

    def to_toml(self) -> str:
        """The recipe as TOML for a dataset card, to rebuild the same rows with ``--recipe``.

        Only what shapes the rows: the identifying fields, then any field that differs from its
        default. Where the builder wrote or pushed the data is theirs, not the dataset's.
        """
        defaults = Recipe(domain=self.domain).to_dict()
        lines = []
        for key, value in self.to_dict().items():
            if key in _PLACE_FIELDS or value is None:
                continue
            if key not in _IDENTIFYING_FIELDS and value == defaults[key]:
                continue
            lines.append(f"{key} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")
