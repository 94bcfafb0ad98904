"""The recipe: a complete, serializable description of one build."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from emgen.errors import RecipeError
from emgen.resources import schema_errors

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

VARIANTS = ("correct", "subtle", "obvious")
BACKENDS = ("bank", "openai")


@dataclass(frozen=True)
class Recipe:
    """What to build. CLI flags and TOML files both produce one; the manifest stores it."""

    domain: str
    variant: str = "subtle"
    n: int | None = None
    seed: int = 0
    backend: str = "bank"
    out: str | None = None

    @classmethod
    def from_mapping(cls, data: dict[str, Any], source: str = "recipe") -> Recipe:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RecipeError(f"{source}: unknown key(s): {', '.join(unknown)}")
        if "domain" not in data:
            raise RecipeError(f"{source}: missing key: domain")
        resolved = dataclasses.asdict(cls(domain=data["domain"])) | data
        errors = schema_errors("recipe", resolved)
        if errors:
            raise RecipeError(f"{source}: {errors[0]}")
        return cls(**resolved)

    @classmethod
    def from_toml(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
        """Read a TOML recipe; ``overrides`` (e.g. CLI flags) win over the file."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RecipeError(f"{path}: no such recipe file") from None
        except tomllib.TOMLDecodeError as exc:
            raise RecipeError(f"{path}: not valid TOML ({exc})") from None
        except UnicodeDecodeError:
            raise RecipeError(f"{path}: not UTF-8 text") from None
        return cls.from_mapping(data | (overrides or {}), source=str(path))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> Recipe:
        return Recipe.from_mapping(self.to_dict() | changes)

    def output_dir(self) -> Path:
        """``out`` if given, else ``outputs/<domain>-<variant>``."""
        if self.out:
            return Path(self.out)
        return Path("outputs") / f"{self.domain}-{self.variant}"

    def to_toml(self) -> str:
        """The recipe as TOML, so a dataset can be rebuilt from its card or manifest."""
        lines = []
        for key, value in self.to_dict().items():
            if value is None:
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
